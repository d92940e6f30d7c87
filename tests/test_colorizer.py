"""Colorizer: any size and depth in, luminance kept, inference shape rules."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_color.evaluation.metrics import lab_lightness, luma_psnr, to_gray
from realtime_color.model.weights import load_checkpoint
from realtime_color.runtime.backends.pytorch import TorchBackend
from realtime_color.runtime.colorizer import Colorizer, inference_shape

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
    assert np.abs(out.astype(int) - out.mean(2, keepdims=True)).mean() > 0.5  # and it is colored


def test_color_input_uses_only_its_luminance(colorizer):
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


def test_numpy_path_matches_the_torch_color_maths():
    """The inference path is numpy (no torch at run time); it must see and make what the torch
    maths of training does: the same L, the same antialiased resize, the same colors in gamut."""
    import torch
    import torch.nn.functional as F

    from realtime_color.color import lab_to_rgb, luminance_to_L, rgb_to_L
    from realtime_color.model.network import STRIDE as MODEL_STRIDE
    from realtime_color.runtime.colorizer import STRIDE, compose, frame_to_L, resize_L

    assert STRIDE == MODEL_STRIDE
    rgb = scene(75, 131)
    want = rgb_to_L(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)[0].numpy()
    np.testing.assert_allclose(frame_to_L(rgb), want, atol=2e-3)
    gray16 = np.random.default_rng(1).integers(0, 65536, (20, 30), dtype=np.uint16)
    want16 = luminance_to_L(torch.from_numpy(gray16.astype(np.float32) / 65535)).numpy()
    np.testing.assert_allclose(frame_to_L(gray16), want16, atol=2e-3)
    lum = frame_to_L(to_gray(rgb))[None, None]
    for shape in ((32, 48), (16, 16), (96, 160)):  # down, far down, up
        ref = F.interpolate(torch.from_numpy(lum), size=shape, mode="bilinear", align_corners=False, antialias=True)
        np.testing.assert_allclose(resize_L(lum, shape), ref.numpy(), atol=1e-3)
    ab = np.random.default_rng(2).uniform(-0.15, 0.15, (1, 2, 19, 33)).astype(np.float32)  # mild: in gamut
    lum = np.full((1, 1, 38, 66), 60.0, np.float32)
    ab_full = F.interpolate(torch.from_numpy(ab * 110), size=(38, 66), mode="bilinear", align_corners=False)
    ref = lab_to_rgb(torch.cat([torch.from_numpy(lum), ab_full], 1)).numpy()
    np.testing.assert_allclose(compose(lum, ab), ref, atol=1e-3)
