"""`rtcolor adapt`: fine-tuning on a camera's own footage moves the model toward its palette."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.evaluation.metrics import to_gray
from realtime_color.media.images import write_image
from realtime_color.media.synth import write_clip
from realtime_color.model.weights import load_checkpoint
from realtime_color.runtime.backends import open_backend
from realtime_color.runtime.colorizer import Colorizer

runner = CliRunner()


def magenta_frame(i: int, h: int = 64, w: int = 96) -> np.ndarray:
    """A distinctive palette: magenta sky over teal ground, a block moving across."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2] = (200, 40, 190)
    img[h // 2 :] = (20, 150, 140)
    x = (i * 5) % (w - 16)
    img[20:36, x : x + 16] = (250, 240, 40)
    rng = np.random.default_rng(i)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def mean_ab(ckpt_path, rgb):
    from skimage.color import rgb2lab

    ckpt = load_checkpoint(ckpt_path)
    col = Colorizer(open_backend("torch", ckpt, device="cpu"), size=64, chroma_gain=ckpt.chroma_gain)
    return rgb2lab(col.colorize(to_gray(rgb)))[..., 1:].reshape(-1, 2).mean(0)


STEPS = "60"


@pytest.mark.slow
@pytest.mark.parametrize("head", ["ab", "bins"])
def test_adapt_moves_toward_the_cameras_palette(tmp_path, random_checkpoint, head):
    if head == "bins":  # a binned head is fitted on its own loss (cross-entropy over bins)
        import torch

        from realtime_color.model.network import ModelConfig, build_model
        from realtime_color.model.weights import save_checkpoint

        torch.manual_seed(0)
        random_checkpoint = str(tmp_path / "bins.safetensors")
        save_checkpoint(
            build_model(ModelConfig(ab_bins=9, temperature=0.6)).eval(), random_checkpoint, {"inference_size": 64}
        )
    frames = tmp_path / "day"
    for i in range(16):
        write_image(frames / f"f{i:03d}.png", magenta_frame(i))
    out = tmp_path / "cam.safetensors"
    # A step count, not the time budget, ends the run: the same test on a fast or a busy machine.
    args = ["adapt", str(frames), "--out", str(out), "--init", random_checkpoint, "--max-minutes", "10"]
    args += ["--max-steps", STEPS]
    lr = "1e-3" if head == "ab" else "3e-3"
    r = runner.invoke(app, [*args, "--crop", "48", "--batch-size", "4", "--lr", lr])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "before: val PSNR" in text and "held-out PSNR" in text
    assert f"{STEPS} steps on" in text  # the run ran its steps; the file holds its best validation's weights
    meta = load_checkpoint(out).meta
    assert meta["training"]["steps"] == meta["metrics"]["validation"]["steps"] in (15, 30, 45, 60)
    assert meta["training"]["frames"]["val"] >= 1 and meta["metrics"]["validation"]["psnr"] > 0
    from skimage.color import rgb2lab

    held_out = magenta_frame(99)
    truth = rgb2lab(held_out)[..., 1:].reshape(-1, 2).mean(0)
    before = np.linalg.norm(mean_ab(random_checkpoint, held_out) - truth)
    after = np.linalg.norm(mean_ab(out, held_out) - truth)
    assert after < 0.7 * before, (before, after)


def test_adapt_from_a_video_skips_duplicates_and_holds_out_the_end(tmp_path):
    from realtime_color.training.config import FootageConfig
    from realtime_color.training.footage import sample_frames

    clip = write_clip(tmp_path / "day.mp4", seconds=2.0, width=160, height=96, audio=False)
    still = tmp_path / "still"
    for i in range(5):
        write_image(still / f"s{i}.png", magenta_frame(0))  # the same picture five times
    (still / "s9.png").write_bytes(b"half a frame")  # a damaged file among them is skipped, not fatal
    said = []
    f = sample_frames([str(clip), str(still)], FootageConfig(), val_fraction=0.25, log=said.append)
    assert f.skipped_unreadable == [str(still / "s9.png")] and any("s9.png" in m for m in said)
    assert f.skipped_duplicates >= 4
    assert f.per_source[str(clip)]["val"] >= 1
    assert f.per_source[str(still)] == {"train": 1, "val": 0}  # one distinct picture: nothing to hold out


def test_adapt_refuses_gray_footage(tmp_path):
    gray = tmp_path / "night"
    for i in range(3):
        write_image(gray / f"g{i}.png", np.full((32, 32), 10 * i, np.uint8))
    r = runner.invoke(app, ["adapt", str(gray), "--out", str(tmp_path / "x.safetensors"), "--minutes", "0.1"])
    assert r.exit_code == 2 and "color frames" in " ".join(r.output.split())


@pytest.mark.slow
def test_ctrl_c_keeps_the_best_state_validated_so_far(tmp_path, random_checkpoint, monkeypatch):
    import realtime_color.training.trainer as trainer_mod

    frames = tmp_path / "day"
    for i in range(8):
        write_image(frames / f"f{i:03d}.png", magenta_frame(i))
    validations, real_validate, real_loss = [], trainer_mod.Trainer.validate, trainer_mod.fit_loss

    def validate(self, *a, **k):
        validations.append(1)
        return real_validate(self, *a, **k)

    def loss_then_ctrl_c(*a, **k):
        if len(validations) >= 2:  # the base model's, then one during fine-tuning
            raise KeyboardInterrupt
        return real_loss(*a, **k)

    monkeypatch.setattr(trainer_mod.Trainer, "validate", validate)
    monkeypatch.setattr(trainer_mod, "fit_loss", loss_then_ctrl_c)
    out = tmp_path / "cam.safetensors"
    # The options' names before 0.2 (--base, --minutes, --steps) still work.
    # Steps, not seconds, set the validation points (after steps 2 and 4 of 8), so a busy machine
    # cannot end the run before the second one (a 6-second budget did, beside a training job).
    args = ["adapt", str(frames), "--out", str(out), "--base", random_checkpoint, "--minutes", "10", "--steps", "8"]
    r = runner.invoke(app, [*args, "--crop", "32", "--batch-size", "2"])
    assert r.exit_code == 130, r.output
    assert "interrupted: wrote" in " ".join(r.output.split())
    assert load_checkpoint(out).meta["metrics"]["validation"]["psnr"] > 0
