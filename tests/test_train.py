"""Training: a tiny run whose loss falls, resume, data summary, and a 2-process DDP run on gloo."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from realtime_color.data import load_images, split
from realtime_color.media.images import write_image
from realtime_color.train import TrainConfig, chroma_loss, lr_at, train
from realtime_color.weights import load_checkpoint, read_metadata

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
        crop=32,
        lr=1e-3,
        warmup_steps=2,
        inference_size=32,
        val_fraction=0.34,
        device="cpu",
        cutmix=0.0,
        l_jitter=0.0,
        dropout=0.0,
    )
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
    losses = [h["train_loss"] for h in res["history"]]
    assert losses[-1] < losses[0], losses
    meta = read_metadata(tmp_path / "m.safetensors")
    assert meta["training"]["skipped_gray"] == 1 and meta["training"]["config"]["seed"] == 0
    assert "psnr_gray" in meta["metrics"]["validation"] and meta["chroma_gain"] > 0
    load_checkpoint(tmp_path / "m.safetensors")
    res2 = train(_cfg(data_dir, tmp_path, epochs=4, resume=True), log=logs.append)
    assert len(res2["history"]) == 4 and any("resumed" in m for m in logs)


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
