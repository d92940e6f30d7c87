"""The selection rules (evaluation/rules.py) pick what their own text says; `rtcolor calibrate`
writes its pick into a new file and leaves the model it read alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.evaluation.rules import CALIBRATION_RULES, CalibrationRule, GainRule
from realtime_color.evaluation.scores import CalibrationRow, GainScores

runner = CliRunner()
PSNR, CIEDE = CALIBRATION_RULES["psnr"], CALIBRATION_RULES["ciede"]


def row(gain, ciede, col, gray=11.0):
    return CalibrationRow(psnr_gain=gain, ciede2000=ciede, ciede2000_gray=gray, colorfulness=col)


ROWS = {
    (0.6, 1.0): row(0.70, 10.10, 22.0),  # the most accurate in PSNR
    (0.6, 1.5): row(0.55, 9.80, 24.0),  # the lowest CIEDE2000 above +0.5 dB
    (0.6, 1.8): row(0.45, 9.60, 28.0),  # lower CIEDE2000 still, but under +0.5 dB
    (0.38, 1.5): row(0.60, 9.803, 25.0),  # within 0.005 of the lowest, higher PSNR: the tie-break
    (1.0, 0.8): row(0.90, 10.00, 15.0),  # too pale for either rule
    (1.0, 1.8): row(0.80, 11.50, 30.0),  # less accurate than gray
}


def test_psnr_rule_takes_the_highest_gain_meeting_the_bars():
    assert PSNR.pick(ROWS, 10.7) == ((0.6, 1.0), True)
    assert "highest validation PSNR gain with colorfulness >= 20" in PSNR.text(10.7)


def test_ciede_rule_takes_the_lowest_ciede_above_half_a_decibel_with_the_tie_break():
    assert CIEDE.pick(ROWS) == ((0.38, 1.5), True)
    without_tie = {k: v for k, v in ROWS.items() if k != (0.38, 1.5)}
    assert CIEDE.pick(without_tie) == ((0.6, 1.5), True)
    assert "PSNR >= gray + 0.5 dB (within 0.005: the higher PSNR gain)" in CIEDE.text()


def test_when_nothing_meets_the_bars():
    pale = {k: CalibrationRow(**{**v.to_dict(), "colorfulness": 15.0}) for k, v in ROWS.items()}
    assert CIEDE.pick(pale, 10.7) == (None, False)  # no fallback: the candidate is out
    # the psnr rule falls back to the best gain under the previous default's CIEDE2000
    assert PSNR.pick(pale, 10.05) == ((1.0, 0.8), False)
    assert PSNR.text(10.05).endswith("else the highest with CIEDE2000 <= 10.05")


def test_the_gain_rule_prefers_colorful_enough_then_psnr():
    rule = GainRule(min_colorfulness=12.0)
    rows = {
        0.5: GainScores(psnr=24.0, psnr_gray=23.0, colorfulness=8.0, colorfulness_truth=20.0, luma_psnr=40.0),
        1.0: GainScores(psnr=23.5, psnr_gray=23.0, colorfulness=14.0, colorfulness_truth=20.0, luma_psnr=40.0),
        1.5: GainScores(psnr=23.0, psnr_gray=23.0, colorfulness=19.0, colorfulness_truth=20.0, luma_psnr=40.0),
    }
    assert rule.pick_gain(rows) == 1.0  # 0.5 has the best PSNR but is too pale
    assert GainRule(0.0).pick_gain(rows) == 0.5 and GainRule(0.0).text() == "highest validation PSNR"
    assert GainRule(50.0).pick_gain(rows) == 1.5  # none colorful enough: the most colorful
    assert rule.better(rows[1.0], rows[0.5]) and not rule.better(rows[1.5], rows[1.0])


def test_old_headers_spelling_is_read():
    old = {"psnr_gain": 0.84, "ciede": 10.02, "ciede_gray": 10.97, "colorfulness": 22.6, "pictures": 52}
    r = CalibrationRow.from_dict(old)
    assert (r.ciede2000, r.ciede2000_gray, r.pictures) == (10.02, 10.97, 52)


@pytest.fixture()
def binned(tmp_path):
    import cv2

    from realtime_color.model.network import ModelConfig, build_model
    from realtime_color.model.weights import save_checkpoint

    model = tmp_path / "m.safetensors"
    save_checkpoint(build_model(ModelConfig(ab_bins=5, temperature=1.0)).eval(), model, {"inference_size": 32})
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(pictures / f"p{i}.png"), rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    return model, pictures


def test_output_with_a_grid_of_ones_own_is_refused_before_any_work(tmp_path, binned):
    absent = tmp_path / "absent.safetensors"  # refused before the model is even read
    args = ["calibrate", str(absent), str(tmp_path), "--gains", "1.5", "-o", str(tmp_path / "c.safetensors")]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "only a pick from the rule's own grid is written" in " ".join(r.output.split())
    model, pictures = binned
    r = runner.invoke(app, ["calibrate", str(model), str(pictures), "-o", str(model), "--force"])
    assert r.exit_code == 2 and "would overwrite an input" in " ".join(r.output.split())


def test_a_calibration_writes_a_new_file_with_the_estimator_it_swept(binned, tmp_path, monkeypatch):
    from realtime_color.model.weights import load_checkpoint, read_metadata

    model, pictures = binned
    before = model.read_bytes()
    # A random network meets no bar: the rule is made to pick a cell.
    monkeypatch.setattr(CalibrationRule, "pick", lambda self, rows, fallback=None: ((0.6, 1.2), True))
    sweep, out = tmp_path / "sweep.json", tmp_path / "calibrated.safetensors"
    args = ["calibrate", str(model), str(pictures), "--rule", "ciede", "--estimator", "median"]
    r = runner.invoke(app, [*args, "--json", str(sweep), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert model.read_bytes() == before  # the model read is never written
    ckpt = load_checkpoint(out)
    assert (ckpt.model.config.estimator, ckpt.model.config.temperature, ckpt.chroma_gain) == ("median", 0.6, 1.2)
    stored = read_metadata(out)["metrics"]["temperature_calibration"]
    assert stored["estimator"] == "median" and len(stored["sweep"]) == 15 and stored["rule"] == CIEDE.text()
    assert "per_picture" not in stored["sweep"]["0.6,1.2"]  # the header keeps the means only
    rows = json.loads(sweep.read_text())["rows"]
    assert len(rows["0.6,1.2"]["per_picture"]["ciede2000"]) == 3  # the JSON keeps each picture's
    # The sweep ran the estimator asked for: a mean's sweep of the same pictures differs.
    r = runner.invoke(app, [*args[:-1], "mean", "--json", str(tmp_path / "mean.json")])
    assert r.exit_code == 0, r.output
    mean_rows = json.loads((tmp_path / "mean.json").read_text())["rows"]
    assert mean_rows["0.6,1.2"]["per_picture"]["ciede2000"] != rows["0.6,1.2"]["per_picture"]["ciede2000"]
