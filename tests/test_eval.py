"""`rtcolor eval` end to end: JSON means agree with an independent PSNR; video temporal figures; sheet."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.evaluation.evaluate import gain_interval
from realtime_color.media.images import read_image, write_image
from realtime_color.media.synth import write_clip

from .conftest import scene

runner = CliRunner()


def independent_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def test_eval_json_agrees_with_an_independent_psnr(tmp_path, random_checkpoint):
    photos = tmp_path / "photos"
    for i in range(2):
        write_image(photos / f"p{i}.png", scene(96, 128, seed=i))
    sheet = tmp_path / "sheet.png"
    common = ["--model", random_checkpoint, "--backend", "torch"]
    r = runner.invoke(app, ["eval", str(photos), "--json", "--sheet", str(sheet), *common])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout[r.stdout.index("{") :])
    assert isinstance(result["psnr"], float) and isinstance(result["psnr_gray"], float)
    assert result["luma_psnr"] >= 40  # color was added, the gray input's luminance was kept
    # Independently: colorize the gray versions with `rtcolor image`, compute PSNR with plain numpy.
    from realtime_color.evaluation.metrics import to_gray

    gray_dir = tmp_path / "gray"
    for i in range(2):
        write_image(gray_dir / f"p{i}.png", to_gray(read_image(photos / f"p{i}.png")))
    assert runner.invoke(app, ["image", str(gray_dir), "-o", str(tmp_path / "out"), *common]).exit_code == 0
    ours = [independent_psnr(read_image(tmp_path / "out" / f"p{i}.png"), scene(96, 128, seed=i)) for i in range(2)]
    grays = [
        independent_psnr(np.repeat(read_image(gray_dir / f"p{i}.png")[..., None], 3, 2), scene(96, 128, seed=i))
        for i in range(2)
    ]
    assert abs(result["psnr"] - np.mean(ours)) < 0.5
    assert abs(result["psnr_gray"] - np.mean(grays)) < 0.5
    assert read_image(sheet).shape[0] == 2 * 180  # one row per item
    gains = [it["psnr"] - it["psnr_gray"] for it in result["items_detail"]]
    assert result["psnr_gain"] == pytest.approx(np.mean(gains))
    lo, hi = result["psnr_gain_interval"]
    assert min(gains) <= lo <= result["psnr_gain"] <= hi <= max(gains)
    assert result["above_gray"] == sum(g > 0 for g in gains)
    r = runner.invoke(app, ["eval", str(photos), *common])  # the table run says it in words
    assert "bootstrap interval" in " ".join(r.output.split())


def test_gain_interval_narrows_with_more_items_and_is_reproducible():
    def items(gains):
        return [{"psnr": 20.0 + g, "psnr_gray": 20.0} for g in gains]

    spread = [-3.0, -1.0, 0.5, 1.0, 2.5]
    few = gain_interval(items(spread))
    many = gain_interval(items(spread * 8))  # the same spread, 8x the pictures
    assert few == gain_interval(items(spread))  # seeded
    assert few["psnr_gain"] == pytest.approx(0.0) and many["psnr_gain"] == pytest.approx(0.0)
    width = [d["psnr_gain_interval"][1] - d["psnr_gain_interval"][0] for d in (few, many)]
    assert width[1] < 0.5 * width[0]  # about 1/sqrt(8) of it
    assert few["psnr_gain_interval"][0] < 0 < few["psnr_gain_interval"][1] and few["above_gray"] == 3
    same = gain_interval(items([0.4] * 6))
    assert same["psnr_gain_interval"] == pytest.approx([0.4, 0.4])  # no spread, no doubt
    assert gain_interval([{"psnr": float("inf"), "psnr_gray": float("inf")}]) == {}


def test_eval_video_reports_temporal_figures_beside_the_original(tmp_path, random_checkpoint):
    clip = write_clip(tmp_path / "color.mp4", seconds=1.0, width=160, height=96, cut_at=0.5)
    r = runner.invoke(app, ["eval", str(clip), "--json", "--model", random_checkpoint, "--backend", "torch"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout[r.stdout.index("{") :])
    item = d["items_detail"][0]
    assert item["frames"] == 30 and item["scene_cuts"] == 1
    for key in ("flicker", "flicker_truth", "cdc", "cdc_truth"):
        assert item[key] >= 0
    assert item["cdc_truth"] > 0  # the original changes (objects move), so its CDC is not zero
    assert abs(item["psnr_gray"] - d["psnr_gray"]) < 1e-9


def test_eval_refuses_a_gray_video(tmp_path, random_checkpoint):
    clip = write_clip(tmp_path / "night.mp4", seconds=0.5, width=64, height=48, gray=True, audio=False)
    r = runner.invoke(app, ["eval", str(clip), "--model", random_checkpoint, "--backend", "torch"])
    assert r.exit_code == 2 and "is a gray video" in " ".join(r.output.split())  # before, it got meaningless scores


def test_eval_refuses_gray_truth_and_missing(tmp_path, random_checkpoint):
    write_image(tmp_path / "g.png", np.full((32, 32), 128, np.uint8))
    args = ["eval", str(tmp_path / "g.png"), str(tmp_path / "none.png")]
    r = runner.invoke(app, [*args, "--model", random_checkpoint, "--backend", "torch"])
    assert r.exit_code != 0
    assert "color ground truth" in " ".join(r.output.split())
    # A gray photo saved as RGB (three equal channels, some JPEG noise) is refused too: it has no color
    # to score, and its gray baseline would be infinitely good.
    rng = np.random.default_rng(0)
    g = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    rgb = np.clip(np.stack([g, g, g], -1).astype(int) + rng.integers(-1, 2, (32, 32, 3)), 0, 255).astype(np.uint8)
    write_image(tmp_path / "rgb_gray.png", rgb)
    write_image(tmp_path / "color.png", scene(32, 32))
    args = ["eval", str(tmp_path / "rgb_gray.png"), str(tmp_path / "color.png"), "--json"]
    r = runner.invoke(app, [*args, "--model", random_checkpoint, "--backend", "torch"])
    assert r.exit_code == 1 and "stored as color" in " ".join(r.output.split())
    result = json.loads(r.stdout[r.stdout.index("{") :])
    assert result["items"] == 1 and result["failed"] == 1 and np.isfinite(result["psnr_gray"])


def test_eval_sheet_is_never_one_of_its_pictures(tmp_path, random_checkpoint):
    photo = write_image(tmp_path / "p.png", scene(32, 32))
    before = photo.read_bytes()
    common = ["--model", random_checkpoint, "--backend", "torch"]
    for sheet, message in ((photo, "one of the pictures being evaluated"), (tmp_path / "s.bak", "name a .png")):
        r = runner.invoke(app, ["eval", str(tmp_path), "--sheet", str(sheet), *common])
        assert r.exit_code == 2 and message in " ".join(r.output.split()), r.output
    assert photo.read_bytes() == before


def test_before_after_sheet_puts_both_models_beside_gray_and_truth(tmp_path, random_checkpoint, image_dir):
    import subprocess
    import sys
    from pathlib import Path

    import cv2

    script = Path(__file__).parents[1] / "tools" / "before_after_sheet.py"
    out = tmp_path / "sheet.png"
    run = [sys.executable, str(script), random_checkpoint, "default", str(image_dir), "--height", "64"]
    r = subprocess.run([*run, "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    sheet = cv2.imread(str(out))
    h, w = scene(seed=0).shape[:2]
    assert sheet.shape[0] == 3 * 64  # a row per picture
    assert sheet.shape[1] == 4 * round(w * 64 / h)  # gray | before | after | truth
    row = sheet[:64]
    tile = sheet.shape[1] // 4
    gray, truth = row[20:, :tile].astype(int), row[20:, 3 * tile :].astype(int)  # below the labels
    assert np.abs(gray[..., 0] - gray[..., 2]).max() <= 1  # the gray tile is gray
    assert np.abs(truth[..., 0] - truth[..., 2]).max() > 20  # the truth is not
    assert not list(tmp_path.glob(".sheet*"))  # written atomically, nothing left behind
    r = subprocess.run([*run, "-o", str(tmp_path / "sheet.gif")], capture_output=True, text=True)
    assert r.returncode == 2 and "name a .jpg or .png file" in r.stderr
