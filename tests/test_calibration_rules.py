"""The calibration rules of scripts/calibrate_temperature.py pick the cell their text says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cal():
    path = Path(__file__).parents[1] / "scripts" / "calibrate_temperature.py"
    spec = importlib.util.spec_from_file_location("calibrate_temperature", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def row(gain, ciede, col, gray=11.0):
    return {"psnr_gain": gain, "ciede": ciede, "ciede_gray": gray, "colorfulness": col}


ROWS = {
    (0.6, 1.0): row(0.70, 10.10, 22.0),  # the most accurate in PSNR
    (0.6, 1.5): row(0.55, 9.80, 24.0),  # the lowest CIEDE2000 above +0.5 dB
    (0.6, 1.8): row(0.45, 9.60, 28.0),  # lower CIEDE2000 still, but under +0.5 dB
    (0.38, 1.5): row(0.60, 9.803, 25.0),  # within 0.005 of the lowest, higher PSNR: the tie-break
    (1.0, 0.8): row(0.90, 10.00, 15.0),  # too pale for either rule
    (1.0, 1.8): row(0.80, 11.50, 30.0),  # less accurate than gray
}


def test_psnr_rule_takes_the_highest_gain_meeting_the_bars(cal):
    assert cal.pick(ROWS, "psnr", 10.7) == ((0.6, 1.0), True)


def test_ciede_rule_takes_the_lowest_ciede_above_half_a_decibel_with_the_tie_break(cal):
    assert cal.pick(ROWS, "ciede", 10.7) == ((0.38, 1.5), True)
    without_tie = {k: v for k, v in ROWS.items() if k != (0.38, 1.5)}
    assert cal.pick(without_tie, "ciede", 10.7) == ((0.6, 1.5), True)


def test_when_nothing_meets_the_bars(cal):
    pale = {k: dict(v, colorfulness=15.0) for k, v in ROWS.items()}
    assert cal.pick(pale, "ciede", 10.7) == (None, False)  # no fallback: the candidate is out
    # the psnr rule falls back to the best gain under the previous default's CIEDE2000
    assert cal.pick(pale, "psnr", 10.05) == ((1.0, 0.8), False)


def test_write_with_a_grid_of_ones_own_is_refused_before_any_work(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).parents[1] / "scripts" / "calibrate_temperature.py"
    absent = tmp_path / "absent.safetensors"  # refused before the model is even read
    r = subprocess.run(
        [sys.executable, str(script), str(absent), str(tmp_path), "--gains", "1.5", "--write"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "--write stores only a pick from the rule's own grid" in r.stderr


def test_a_sweep_with_write_stores_the_estimator_it_swept(cal, tmp_path, monkeypatch):
    import json
    import sys

    import cv2
    import numpy as np

    from realtime_color.model.network import ModelConfig, build_model
    from realtime_color.model.weights import load_checkpoint, read_metadata, save_checkpoint

    model = tmp_path / "m.safetensors"
    save_checkpoint(build_model(ModelConfig(ab_bins=5, temperature=1.0)).eval(), model, {"inference_size": 32})
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(pictures / f"p{i}.png"), rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    monkeypatch.setattr(cal, "pick", lambda rows, rule, fallback: ((0.6, 1.2), True))  # a random net meets no bar
    sweep = tmp_path / "sweep.json"
    argv = ["calibrate_temperature.py", str(model), str(pictures), "--rule", "ciede", "--estimator", "median"]
    monkeypatch.setattr(sys, "argv", [*argv, "--json", str(sweep), "--write"])
    assert cal.main() == 0
    ckpt = load_checkpoint(model)
    assert (ckpt.model.config.estimator, ckpt.model.config.temperature, ckpt.chroma_gain) == ("median", 0.6, 1.2)
    stored = read_metadata(model)["metrics"]["temperature_calibration"]
    assert stored["estimator"] == "median" and len(stored["sweep"]) == 15
    assert "per_picture" not in stored["sweep"]["0.6,1.2"]  # the header keeps the means only
    rows = json.loads(sweep.read_text())["rows"]
    assert len(rows["0.6,1.2"]["per_picture"]["ciede"]) == 3  # the JSON keeps each picture's
    # The sweep ran the estimator asked for: a mean's sweep of the same pictures differs.
    monkeypatch.setattr(sys, "argv", [*argv[:-1], "mean", "--json", str(tmp_path / "mean.json")])
    assert cal.main() == 0
    mean_rows = json.loads((tmp_path / "mean.json").read_text())["rows"]
    assert mean_rows["0.6,1.2"]["per_picture"]["ciede"] != rows["0.6,1.2"]["per_picture"]["ciede"]
