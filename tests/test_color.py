"""Color conversion against scikit-image: random colors, gamut edges, fp16, batching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.color import lab2rgb, rgb2lab

from realtime_color.color import lab_to_rgb, luminance_to_L, rgb_to_lab

unit_floats = st.floats(0.0, 1.0, allow_nan=False, width=32)


def _t(img_hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img_hwc.transpose(2, 0, 1))).float()


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (4, 5, 3), elements=unit_floats))
def test_rgb_to_lab_matches_skimage(rgb):
    ours = rgb_to_lab(_t(rgb)).numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(ours, rgb2lab(rgb.astype(np.float64)), atol=2e-3)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (4, 5, 3), elements=unit_floats))
def test_lab_round_trip_through_skimage(rgb):
    lab = rgb2lab(rgb.astype(np.float64))
    ours = lab_to_rgb(_t(lab.astype(np.float32))).numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(ours, lab2rgb(lab), atol=2e-4)


def test_gamut_edges_and_out_of_gamut_lab():
    corners = np.array(list(itertools.product([0.0, 1.0], repeat=3)), np.float32).reshape(2, 4, 3)
    np.testing.assert_allclose(rgb_to_lab(_t(corners)).numpy().transpose(1, 2, 0), rgb2lab(corners), atol=2e-3)
    # Lab values far outside sRGB: both clip the same way (and our z clamp matches skimage's).
    lab = np.array([[[50, 120, -120], [90, -100, 100], [10, 80, 120], [100, 0, 0]]], np.float32)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = lab2rgb(lab.astype(np.float64))
    np.testing.assert_allclose(lab_to_rgb(_t(lab)).numpy().transpose(1, 2, 0), ref, atol=2e-4)


@pytest.mark.parametrize("shape", [(3, 7, 9), (2, 3, 7, 9), (2, 2, 3, 4, 4)])
def test_batched_shapes_and_fp16(shape):
    x = torch.rand(shape)
    lab32 = rgb_to_lab(x)
    lab16 = rgb_to_lab(x.half())
    assert lab32.shape == shape and lab16.dtype == torch.float16
    assert (lab16.float() - lab32).abs().max() < 0.15  # fp16 storage of values up to 100
    back = lab_to_rgb(lab32)
    assert (back - x).abs().max() < 1e-4


def test_gray_luminance_matches_rgb_path():
    g = torch.rand(1, 5, 6)
    lab = rgb_to_lab(g.expand(3, 5, 6))
    torch.testing.assert_close(luminance_to_L(g)[0], lab[0], atol=1e-4, rtol=0)
    assert lab[1:].abs().max() < 1e-2  # gray has (almost) no chroma: the matrix rows round the white point
