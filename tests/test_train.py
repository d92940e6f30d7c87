"""Training: a tiny run whose loss falls, resume, data summary, and a 2-process DDP run on gloo."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from realtime_color.media.images import write_image
from realtime_color.model.weights import load_checkpoint, read_metadata
from realtime_color.training.config import AugmentConfig
from realtime_color.training.data import load_images, split
from realtime_color.training.fitting import chroma_loss, lr_at
from realtime_color.training.trainer import TrainConfig, train

from .conftest import scene


@pytest.fixture()
def data_dir(tmp_path):
    d = tmp_path / "data"
    for i in range(6):
        write_image(d / f"c{i}.png", scene(80, 80, seed=i))
    write_image(d / "gray.png", np.full((40, 40), 128, np.uint8))
    (d / "broken.jpg").write_bytes(b"nope")
    return d


def _cfg(data_dir, tmp_path, **kw) -> TrainConfig:
    base = dict(
        data=[str(data_dir)],
        out=str(tmp_path / "m.safetensors"),
        backbone="none",
        epochs=3,
        repeat=4,
        batch_size=4,
        augment=AugmentConfig(crop=32, cutmix=0.0, l_jitter=0.0),
        lr=1e-3,
        warmup_steps=2,
        inference_size=32,
        val_fraction=0.34,
        device="cpu",
        dropout=0.0,
    )
    if "init" not in kw:  # the small regression head (these tests were sized on it); init: the checkpoint's
        base["ab_bins"] = 0
    base.update(kw)
    return TrainConfig(**base)


def test_data_summary_skips_gray_and_unreadable(data_dir):
    data = load_images([str(data_dir)])
    assert len(data.images) == 6 and len(data.skipped_gray) == 1 and len(data.skipped_unreadable) == 1


def test_split_is_deterministic_and_disjoint():
    a, b = split(10, 0.2, seed=3)
    assert (a, b) == split(10, 0.2, seed=3)
    assert not set(a) & set(b) and len(b) == 2


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 100, 1.0, 10) for s in range(100)]
    assert lrs[0] < lrs[9] <= 1.0 and lrs[99] < 0.1 and lrs[50] > lrs[80]
    assert lr_at(20, 100, 1.0, 10, time_fraction=1.0) == pytest.approx(0.05)


def test_chroma_loss_only_punishes_missing_saturation():
    target = torch.tensor([0.5, 0.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    assert chroma_loss(target * 0.2, target) > 0.3
    assert chroma_loss(target * 1.5, target) == 0  # more saturated than the truth: no penalty
    rotated = torch.tensor([0.0, 0.5]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    assert chroma_loss(rotated, target) < 1e-3  # wrong hue, right saturation: not this term's job


@pytest.mark.slow
def test_tiny_training_loss_falls_and_resume(data_dir, tmp_path):
    logs: list[str] = []
    res = train(_cfg(data_dir, tmp_path), log=logs.append)
    losses = [h.train_loss for h in res.history]
    assert losses[-1] < losses[0], losses
    meta = read_metadata(tmp_path / "m.safetensors")
    assert meta["training"]["skipped_gray"] == 1 and meta["training"]["config"]["seed"] == 0
    assert "psnr_gray" in meta["metrics"]["validation"] and meta["chroma_gain"] > 0
    load_checkpoint(tmp_path / "m.safetensors")
    res2 = train(_cfg(data_dir, tmp_path, epochs=4, resume=True), log=logs.append)
    assert len(res2.history) == 4 and any("resumed" in m for m in logs)


@pytest.mark.slow
def test_ddp_two_processes_on_gloo(data_dir, tmp_path):
    out = tmp_path / "ddp.safetensors"
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", TMPDIR=str(tmp_path))  # torchrun scratch
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "realtime_color.cli",
        "train",
        str(data_dir),
        "--out",
        str(out),
        "--backbone",
        "none",
        "--epochs",
        "2",
        "--repeat",
        "2",
        "-b",
        "2",
        "--crop",
        "32",
        "--size",
        "32",
        "--device",
        "cpu",
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "DDP: 2 processes (gloo)" in r.stderr
    assert load_checkpoint(out).meta["training"]["world_size"] == 2


def _cutout_dir(tmp_path, rgba: bool = True):
    """One red disc on a transparent background (or, rgba=False, an opaque RGB picture)."""
    d = tmp_path / "cutouts"
    d.mkdir()
    yy, xx = np.mgrid[:40, :40]
    alpha = np.where((yy - 20) ** 2 + (xx - 20) ** 2 < 15**2, 255, 0).astype(np.uint8)
    alpha[(yy - 20) ** 2 + (xx - 20) ** 2 == 15**2] = 128  # a soft edge
    red = np.zeros((40, 40, 4), np.uint8)
    red[..., 0], red[..., 3] = 220, alpha
    import cv2

    img = cv2.cvtColor(red, cv2.COLOR_RGBA2BGRA) if rgba else np.full((40, 40, 3), 90, np.uint8)
    cv2.imwrite(str(d / "disc.png"), img)
    return d


def test_paste_keeps_every_label_consistent_with_its_color(tmp_path):
    from realtime_color.color import normalize_ab, rgb_to_lab
    from realtime_color.training.data import lab_split, load_cutouts, make_batch

    cutouts, names = load_cutouts(_cutout_dir(tmp_path))
    assert names == ["disc.png"] and cutouts[0].shape[2] == 4
    gray = np.full((64, 64, 3), 128, np.uint8)
    aug = AugmentConfig(crop=32, cutmix=0.0, paste_prob=1.0, paste_scale=(0.5, 0.9))
    batch = make_batch([gray], [0] * 6, aug, np.random.default_rng(0), cutouts)
    rgb = batch.permute(0, 2, 3, 1).numpy()
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 10)
    assert red.any(axis=(1, 2)).all(), "every crop got a red disc"
    untouched = (rgb == 128).all(-1)
    assert (red | untouched).mean() > 0.9  # the rest are blended edge pixels
    lum, ab = lab_split(batch)
    # Labels are the composite's own colors: the half-resolution target is the pooled Lab of the
    # pasted picture, so red where the disc is and neutral where the gray picture shows.
    want = torch.nn.functional.avg_pool2d(normalize_ab(rgb_to_lab(batch.float() / 255)[:, 1:]), 2)
    torch.testing.assert_close(ab, want)
    red_blocks = torch.from_numpy(red).view(6, 16, 2, 16, 2).all(2).all(-1)
    gray_blocks = torch.from_numpy(untouched).view(6, 16, 2, 16, 2).all(2).all(-1)
    assert (ab[:, 0][red_blocks] > 0.4).all() and (ab[:, 0][gray_blocks].abs() < 0.01).all()


def test_paste_refuses_a_folder_without_rgba_pictures(tmp_path):
    from realtime_color.training.data import load_cutouts

    with pytest.raises(ValueError, match="no RGBA pictures"):
        load_cutouts(_cutout_dir(tmp_path, rgba=False))
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_cutouts(tmp_path / "absent")


@pytest.mark.slow
def test_cached_frozen_stages_train_only_the_rest_and_record_the_backbone(data_dir, tmp_path):
    from torchvision.models import vgg16

    torch.manual_seed(0)
    bb = tmp_path / "vgg.pth"
    torch.save(vgg16(weights=None).state_dict(), bb)
    cfg = _cfg(
        data_dir,
        tmp_path,
        backbone=str(bb),
        freeze_stages=4,
        cache_crops=12,
        freeze_epochs=0,
        epochs=2,
        paste=str(_cutout_dir(tmp_path)),
        paste_val_fraction=0.0,
    )
    logs: list[str] = []
    res = train(cfg, log=logs.append)
    assert any("cached stages 1-4 for 12 crops" in m for m in logs)
    assert len(res.history) == 2
    ckpt = load_checkpoint(tmp_path / "m.safetensors")
    meta = ckpt.meta["training"]
    assert meta["backbone"]["format"] == "torchvision" and len(meta["backbone"]["sha256"]) == 64
    assert meta["config"]["freeze_stages"] == 4
    from realtime_color.model.backbones import load_backbone

    src = load_backbone(str(bb)).state_dict()
    # Frozen stage 3 is the backbone's (to fp16 precision); stage 5 was trained.
    torch.testing.assert_close(ckpt.model.encoder[2][-2].weight, src["features.14.weight"], atol=1e-3, rtol=1e-3)
    assert not torch.allclose(ckpt.model.encoder[4][-2].weight, src["features.28.weight"], atol=1e-4)


def test_cache_needs_frozen_stages_and_bad_paste_knobs_are_named():
    """The library names the fields; the CLI spells them as its options (test_cli_image)."""
    with pytest.raises(ValueError) as e:
        TrainConfig(cache_crops=100, freeze_stages=0)
    assert str(e.value).startswith("cache_crops 100 must be 0, or positive with freeze_stages 1..5")
    with pytest.raises(ValueError) as e:
        AugmentConfig(paste_prob=2.0, paste_scale=(0.8, 0.2))
    msg = str(e.value)
    assert "paste_prob 2.0" in msg and "paste_scale (0.8, 0.2)" in msg and "--" not in msg


@pytest.mark.slow
def test_init_continues_a_checkpoint_and_refuses_one_validated_elsewhere(data_dir, tmp_path):
    from realtime_color.errors import ConfigError

    first = _cfg(data_dir, tmp_path, epochs=1)
    train(first)
    start = load_checkpoint(first.out)
    # One more epoch at a learning rate of ~0: the run starts from those weights, not at random.
    cont = _cfg(data_dir, tmp_path, init=first.out, out=str(tmp_path / "c.safetensors"), epochs=1, lr=1e-9)
    train(cont)
    after = load_checkpoint(cont.out)
    for k, v in start.model.state_dict().items():
        torch.testing.assert_close(after.model.state_dict()[k], v, atol=2e-3, rtol=1e-3)
    meta = after.meta["training"]["backbone"]
    assert meta["init"]["file"] == "m.safetensors" and meta["init"]["sha256"] == start.sha256
    other_split = _cfg(data_dir, tmp_path, init=first.out, out=str(tmp_path / "d.safetensors"), seed=5)
    with pytest.raises(ConfigError, match="validated on 2 others"):
        train(other_split)
    assert not (tmp_path / "d.safetensors").exists()
    # A sibling: other crops (--seed 5) on the same validation pictures (--split-seed 0).
    sibling = _cfg(
        data_dir, tmp_path, init=first.out, out=str(tmp_path / "s.safetensors"), epochs=1, seed=5, split_seed=0
    )
    train(sibling)
    sib = load_checkpoint(sibling.out).meta["training"]
    assert sib["val_images"] == start.meta["training"]["val_images"] and sib["config"]["seed"] == 5


@pytest.mark.slow
def test_a_binned_head_trains_on_cross_entropy_and_saves_its_temperature(data_dir, tmp_path):
    from realtime_color.model.network import annealed_mean, soft_bins
    from realtime_color.training.fitting import bins_loss, fit_loss

    torch.manual_seed(0)
    ab = torch.rand(2, 2, 4, 4) * 1.6 - 0.8
    target = soft_bins(ab, 9)
    # The loss is lowest where the logits are the target distribution (cross-entropy >= entropy)...
    best = bins_loss(target.clamp_min(1e-12).log(), ab, 9)
    assert bins_loss(torch.zeros_like(target), ab, 9) > best + 0.5
    cfg = _cfg(data_dir, tmp_path, ab_bins=9, temperature=0.5, epochs=2)
    torch.testing.assert_close(fit_loss(target.clamp_min(1e-12).log(), ab, cfg.ab_bins), best)
    # ...so minimizing it from a uniform guess recovers each pixel's color as the mean at T = 1.
    logits = torch.zeros_like(target, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.3)
    for _ in range(300):
        opt.zero_grad()
        bins_loss(logits, ab, 9).backward()
        opt.step()
    torch.testing.assert_close(annealed_mean(logits.detach(), 9, 1.0), ab, atol=0.02, rtol=0)
    res = train(cfg)
    assert all(np.isfinite(h.train_loss) for h in res.history)
    ckpt = load_checkpoint(cfg.out)
    assert ckpt.model.config.ab_bins == 9 and ckpt.model.config.temperature == 0.5
    assert read_metadata(cfg.out)["training"]["config"]["ab_bins"] == 9
    with torch.no_grad():
        out = ckpt.model(torch.rand(1, 1, 32, 48))
    assert out.shape == (1, 2, 16, 24) and torch.isfinite(out).all()


@pytest.mark.slow
def test_init_takes_the_checkpoints_head(data_dir, tmp_path):
    """--init continues the checkpoint's network, binned head and temperature included, without
    restating them; a different --ab-bins is refused by name."""
    from realtime_color.errors import ConfigError

    first = _cfg(data_dir, tmp_path, ab_bins=5, temperature=0.6, epochs=1)
    train(first)
    cont = _cfg(data_dir, tmp_path, init=first.out, out=str(tmp_path / "c.safetensors"), epochs=1, lr=1e-9)
    train(cont)
    after = load_checkpoint(cont.out).model.config
    assert after.ab_bins == 5 and after.temperature == 0.6
    clash = _cfg(data_dir, tmp_path, init=first.out, out=str(tmp_path / "d.safetensors"), ab_bins=7)
    with pytest.raises(ConfigError, match="ab_bins 7 must be unset .the checkpoint's. or 5"):
        train(clash)
    # The head's own knobs follow the checkpoint's head: rebalancing is taken without restating
    # --ab-bins, a regression loss is refused by name.
    said = []
    rebalanced = _cfg(data_dir, tmp_path, init=first.out, out=str(tmp_path / "r.safetensors"), epochs=1, rebalance=0.5)
    train(rebalanced, log=said.append)
    assert any(line.startswith("rebalancing colors (mix 0.5)") for line in said)
    l1 = _cfg(data_dir, tmp_path, init=first.out, out=str(tmp_path / "e.safetensors"), loss="l1")
    with pytest.raises(ConfigError, match="loss 'l1' must be .*unset with a binned head"):
        train(l1)


def test_a_new_network_gets_the_bundled_models_head():
    from realtime_color.model.checkpoint import default_model_path
    from realtime_color.training.config import adapt_config

    shipped = read_metadata(default_model_path())
    cfg, head = TrainConfig(), shipped["model_config"]
    assert (cfg.ab_bins, cfg.temperature) == (head["ab_bins"], head["temperature"])
    assert cfg.inference_size == shipped["inference_size"]
    # adapt is the same trainer's configuration: the head, size and temperature are its checkpoint's
    adapted = adapt_config(data=["day/"])
    assert adapted.init == "default" and adapted.ab_bins is None and adapted.footage is not None


def test_a_binned_head_refuses_a_second_loss():
    with pytest.raises(ValueError, match="chroma_weight 0.5 must be 0 with a binned head"):
        TrainConfig(chroma_weight=0.5)  # the default head is binned, as the bundled model's
    with pytest.raises(ValueError, match="unset with a binned head"):
        TrainConfig(ab_bins=21, loss="l1")
    with pytest.raises(ValueError, match="ab_bins 1 must be 0"):
        TrainConfig(ab_bins=1)
    with pytest.raises(ValueError, match="rebalance 0.5 must be 0 .off., or in .0, 1. with a binned head"):
        TrainConfig(ab_bins=0, rebalance=0.5)  # a regression head has no bins to weight
    with pytest.raises(ValueError, match="rebalance 1.5 must be"):
        TrainConfig(ab_bins=21, rebalance=1.5)


def test_rebalancing_weights_rare_colors_up_and_keeps_the_loss_scale():
    from realtime_color.model.network import bin_centers
    from realtime_color.training.fitting import bin_prior, bins_loss, rebalance_weights

    n = 9
    # Mostly near-neutral pixels, a few saturated red ones.
    ab = torch.zeros(8, 2, 6, 6)
    ab[:, 0] = 0.05
    ab[:2, :, :2, :2] = torch.tensor([0.6, 0.4]).view(2, 1, 1)
    prior = bin_prior(ab, n)
    assert prior.shape == (n * n,) and torch.isclose(prior.sum(), torch.tensor(1.0))
    centers = bin_centers(n)
    neutral = int(torch.cdist(torch.tensor([[0.05, 0.0]]), centers).argmin())
    red = int(torch.cdist(torch.tensor([[0.6, 0.4]]), centers).argmin())
    assert prior[neutral] > 20 * prior[red] > 0
    w = rebalance_weights(prior, 0.5)
    assert torch.isclose((prior * w).sum(), torch.tensor(1.0))  # a pixel's expected weight is 1
    assert w[red] > 3 * w[neutral]
    torch.testing.assert_close(rebalance_weights(prior, 1.0), torch.ones(n * n))  # mix 1: no rebalancing
    # Every pixel predicted neutral: the weighted loss counts the red pixels' miss more than the
    # unweighted one does, and the neutral pixels' (near) hit less.
    logits = torch.zeros(8, n * n, 6, 6)
    logits[:, neutral] = 5.0
    reds, rest = (slice(0, 2), slice(None), slice(0, 2), slice(0, 2)), (slice(2, 8),)
    assert bins_loss(logits[reds], ab[reds], n, w) > 3 * bins_loss(logits[reds], ab[reds], n)
    assert bins_loss(logits[rest], ab[rest], n, w) < bins_loss(logits[rest], ab[rest], n)
    torch.testing.assert_close(bins_loss(logits, ab, n, torch.ones(n * n)), bins_loss(logits, ab, n))


@pytest.mark.slow
def test_a_rebalanced_binned_head_trains(data_dir, tmp_path):
    said = []
    cfg = _cfg(data_dir, tmp_path, ab_bins=9, rebalance=0.5, epochs=1)
    res = train(cfg, log=said.append)
    assert np.isfinite(res.history[0].train_loss)
    assert any(line.startswith("rebalancing colors (mix 0.5)") for line in said)
    assert read_metadata(cfg.out)["training"]["config"]["rebalance"] == 0.5


@pytest.mark.slow
def test_stop_after_ends_early_on_the_longer_schedule(data_dir, tmp_path):
    from realtime_color.errors import ConfigError

    lines = []
    early = _cfg(data_dir, tmp_path, epochs=3, stop_after=1, out=str(tmp_path / "early.safetensors"))
    result = train(early, log=lines.append)
    assert [h.epoch for h in result.history] == [1]
    assert any("stopped after epoch 1 of 3" in line for line in lines)
    assert read_metadata(early.out)["training"]["epochs_run"] == 1
    # The same epoch on a one-epoch schedule decays further: other weights.
    short = _cfg(data_dir, tmp_path, epochs=1, out=str(tmp_path / "short.safetensors"))
    train(short, log=lambda *_: None)
    a, b = (load_checkpoint(c.out).model.state_dict() for c in (early, short))
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    with pytest.raises(ConfigError, match="stop_after 4 must be 0 .all. to"):
        _cfg(data_dir, tmp_path, epochs=3, stop_after=4)
