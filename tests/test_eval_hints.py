"""`rtcolor eval --hints`: simulated hints from the truth, the peers given the same hints."""

from __future__ import annotations

import json

import numpy as np
import torch
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.evaluation.hinted import levin_fill, nearest_fill, simulated_hints
from realtime_color.media.images import write_image
from realtime_color.model.network import ModelConfig, build_model
from realtime_color.model.weights import save_checkpoint

from .conftest import scene

runner = CliRunner()


def _two_regions() -> tuple[np.ndarray, np.ndarray]:
    lum = np.full((32, 48), 30.0, np.float32)
    lum[:, 24:] = 70.0  # a dark left region, a light right one: an edge Levin's weights respect
    chan = np.zeros((3, 32, 48), np.float32)
    chan[0, 10, 5], chan[2, 10, 5] = 0.5, 1.0  # one red-ish hint on the left
    chan[1, 20, 40], chan[2, 20, 40] = -0.4, 1.0  # one blue-ish hint on the right
    return lum, chan


def test_levin_propagates_within_regions_and_keeps_the_hints():
    lum, chan = _two_regions()
    ab = levin_fill(lum, chan)
    assert abs(ab[0, 10, 5] - 0.5) < 1e-6 and abs(ab[1, 20, 40] + 0.4) < 1e-6
    assert ab[0, 30, 20] > 0.4 and abs(ab[1, 30, 20]) < 0.1  # far corner of the left region: its hint
    assert ab[1, 2, 30] < -0.3 and abs(ab[0, 2, 30]) < 0.1  # across the edge: the other hint
    assert (levin_fill(lum, np.zeros_like(chan)) == 0).all()  # no hints: gray


def test_nearest_fill_takes_the_nearest_hint():
    _, chan = _two_regions()
    ab = nearest_fill(chan)
    assert ab[0, 0, 0] == 0.5 and ab[1, 31, 47] == np.float32(-0.4)
    assert (nearest_fill(np.zeros_like(chan)) == 0).all()


def test_simulated_hints_are_fixed_by_seed_and_name_and_nested():
    truth = scene(60, 80)
    ten = simulated_hints(truth, 10, "a.png")
    assert ten == simulated_hints(truth, 10, "/elsewhere/a.png")  # by file name, not by folder
    assert simulated_hints(truth, 5, "a.png") == ten[:5]  # the 5 hints are among the 10
    assert simulated_hints(truth, 10, "b.png") != ten
    assert simulated_hints(truth, 10, "a.png", seed=1) != ten


def test_eval_hints_reports_each_count_beside_gray_and_peers(tmp_path, random_checkpoint):
    torch.manual_seed(0)
    model = build_model(ModelConfig(ab_bins=5, hint_channels=3)).eval()
    ckpt = save_checkpoint(model, tmp_path / "h.safetensors", {"inference_size": 64})
    photos = tmp_path / "photos"
    for i in range(2):
        write_image(photos / f"p{i}.png", scene(48, 64, seed=i))
    args = ["eval", str(photos), "--hints", "0,2", "--model", str(ckpt), "--backend", "torch"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout[r.stdout.index("{") :])
    assert result["items"] == 2 and set(result["counts"]) == {"0", "2"}
    for method in ("network", "nearest", "levin"):
        assert np.isfinite(result["counts"]["2"][method]["psnr"])
    assert result["counts"]["0"]["levin"]["psnr"] == result["gray"]["psnr"]  # no hints: the peers are gray
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "levin" in r.output
    # A model without hint inputs, and bad counts, are refused in one line.
    r = runner.invoke(app, ["eval", str(photos), "--hints", "2", "--model", random_checkpoint, "--backend", "torch"])
    assert r.exit_code != 0 and "takes no hints" in r.output
    r = runner.invoke(app, [*args[:3], "--hints", "x", *args[5:]])
    assert r.exit_code != 0 and "--hints" in r.output
