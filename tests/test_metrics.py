"""Metrics against known values: identical images, known shifts, a hand-computed colorfulness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from realtime_color.evaluation import metrics


def test_identical_images():
    img = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert metrics.psnr(img, img) == math.inf
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    assert metrics.ciede2000(img, img) == pytest.approx(0.0, abs=1e-9)
    assert metrics.luma_psnr(img, img) == math.inf


def test_known_shift_gives_known_psnr():
    a = np.full((16, 16, 3), 100, np.uint8)
    b = a + 10  # every channel off by 10/255: PSNR = 20 log10(255 / 10)
    assert metrics.psnr(b, a) == pytest.approx(20 * math.log10(25.5), abs=1e-6)
    assert metrics.luma_psnr(b, a) == pytest.approx(20 * math.log10(25.5), abs=1e-6)
    assert metrics.ciede2000(b, a) > 1.0


def test_colorfulness_by_hand():
    assert metrics.colorfulness(np.full((4, 4, 3), 77, np.uint8)) == 0.0  # gray
    img = np.zeros((2, 1, 3), np.uint8)
    img[0, 0] = (255, 0, 0)  # rg = 255, yb = 127.5
    img[1, 0] = (0, 0, 255)  # rg = 0,   yb = -255
    # sd_rg = 127.5, sd_yb = 191.25; mean_rg = 127.5, mean_yb = -63.75
    want = math.hypot(127.5, 191.25) + 0.3 * math.hypot(127.5, -63.75)
    assert metrics.colorfulness(img) == pytest.approx(want)


def test_to_gray_keeps_lightness_and_dtype():
    rgb = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    g = metrics.to_gray(rgb)
    assert g.dtype == np.uint8 and g.ndim == 2
    assert np.abs(metrics.lab_lightness(g) - metrics.lab_lightness(rgb)).max() < 0.5
