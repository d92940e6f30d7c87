"""Colorizer: any size and depth in, luminance kept, inference shape rules."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_color.backends.pytorch import TorchBackend
from realtime_color.colorizer import Colorizer, inference_shape
from realtime_color.metrics import lab_lightness, luma_psnr, to_gray
from realtime_color.weights import load_checkpoint

from .conftest import scene


@pytest.fixture(scope="module")
def colorizer():
    ck = load_checkpoint()  # the bundled default
    return Colorizer(TorchBackend(ck.model), size=128, chroma_gain=ck.chroma_gain)


def test_inference_shape_keeps_aspect_in_multiples_of_16():
    assert inference_shape(720, 1280, 256) == (144, 256)
    assert inference_shape(1080, 1920, 256) == (144, 256)
    assert inference_shape(37, 5, 256) == (256, 32)
    for size in (8, 0, 100_000):  # a huge size would try to allocate tens of GB
        with pytest.raises(ValueError, match=f"inference size {size} is out of range; use 16 to 2048"):
            inference_shape(10, 10, size)


@pytest.mark.parametrize("shape", [(96, 128), (37, 53), (53, 37, 3), (1, 1), (200, 33, 4)])
def test_any_size_and_channels(colorizer, shape):
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = colorizer.colorize(frame)
    assert out.shape == (*shape[:2], 3) and out.dtype == np.uint8


def test_16bit_in_16bit_out(colorizer):
    frame = (np.linspace(0, 65535, 40 * 60).reshape(40, 60)).astype(np.uint16)
    out = colorizer.colorize(frame)
    assert out.dtype == np.uint16 and out.shape == (40, 60, 3)


def test_luminance_is_the_inputs(colorizer):
    gray = to_gray(scene(120, 160))
    out = colorizer.colorize(gray)
    assert luma_psnr(out, gray) > 40
    dl = np.abs(lab_lightness(out) - lab_lightness(gray))
    assert dl.mean() < 0.5  # within rounding of 8-bit output
    assert np.abs(out.astype(int) - out.mean(2, keepdims=True)).mean() > 0.5  # and it is coloured


def test_colour_input_uses_only_its_luminance(colorizer):
    rgb = scene(64, 64)
    gray = to_gray(rgb)
    a, b = colorizer.colorize(rgb), colorizer.colorize(gray)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_batch_equals_single(colorizer):
    frames = [to_gray(scene(48, 64, seed=s)) for s in range(3)]
    batch = colorizer.colorize_batch(frames)
    for f, b in zip(frames, batch, strict=True):
        assert np.abs(colorizer.colorize(f).astype(int) - b.astype(int)).max() <= 1


def test_bad_frames_raise_value_error(colorizer):
    with pytest.raises(ValueError, match="dtype"):
        colorizer.colorize(np.zeros((4, 4), np.int64))
    with pytest.raises(ValueError, match="shape"):
        colorizer.colorize(np.zeros((4, 4, 3, 2), np.uint8))
