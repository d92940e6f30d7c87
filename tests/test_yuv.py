"""Video color maths: Y'CbCr planes round trip, luma -> L, the OpenCV Lab path against the torch one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from realtime_color.color import lab_to_rgb, lab_to_rgb_in_gamut, luma_to_L_table, luminance_to_L, ycbcr_matrix_for
from realtime_color.media.frames import Picture, picture_from_bgr, planes_from_rgb
from realtime_color.runtime.colorizer import ab_to_chroma

from .conftest import scene


@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
@pytest.mark.parametrize("full_range", [False, True])
def test_planes_round_trip(matrix, full_range):
    rgb = scene(48, 64, seed=3)
    y, u, v = planes_from_rgb(rgb, matrix, full_range=full_range, subsampling=(1, 1))
    pic = Picture(y=y, index=0, u=u, v=v, matrix=matrix, full_range=full_range, subsampling=(1, 1))
    back = pic.to_bgr()[..., ::-1].astype(int)
    assert np.abs(back - rgb.astype(int)).max() <= 3  # 8-bit quantization of Y'CbCr, nothing more


def test_luma_table_is_the_still_picture_L():
    table = luma_to_L_table(full_range=True)
    expected = luminance_to_L(torch.arange(256, dtype=torch.float32) / 255).numpy()
    assert np.allclose(table, expected, atol=1e-4)
    limited = luma_to_L_table(full_range=False)
    assert limited[16] == pytest.approx(0.0, abs=1e-4) and limited[235] == pytest.approx(100.0, abs=1e-3)
    assert limited[0] == limited[16] and limited[255] == limited[235]  # out-of-range codes clamp


def test_opencv_lab_path_matches_torch_in_gamut():
    rng = np.random.default_rng(0)
    lum = rng.uniform(30, 80, (40, 40)).astype(np.float32)
    ab = rng.uniform(-15, 15, (40, 40, 2)).astype(np.float32)  # modest chroma: in gamut
    fast = lab_to_rgb_in_gamut(lum, ab)
    ref = lab_to_rgb(torch.from_numpy(np.dstack([lum, ab])).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(fast - ref).max() < 2e-3


def test_out_of_gamut_chroma_is_reduced_not_clipped():
    lum = np.full((8, 8), 50.0, np.float32)
    ab = np.full((8, 8, 2), 120.0, np.float32)  # far outside sRGB at L 50
    rgb = lab_to_rgb_in_gamut(lum, ab)
    assert ((rgb > 0) & (rgb < 1)).all()  # every channel strictly inside: chroma was scaled down
    assert np.std(rgb, axis=-1).mean() > 0.01  # but not to gray


def test_only_the_pixels_outside_the_gamut_change():
    rng = np.random.default_rng(1)
    lum = rng.uniform(30, 80, (16, 16)).astype(np.float32)
    ab = rng.uniform(-15, 15, (16, 16, 2)).astype(np.float32)
    ab[::3, ::2] = 120.0  # a scattered third of the pixels far outside sRGB
    rgb = lab_to_rgb_in_gamut(lum, ab)
    plain = cv2.cvtColor(np.dstack([lum, ab]), cv2.COLOR_Lab2RGB)
    outside = np.zeros((16, 16), bool)
    outside[::3, ::2] = True
    assert np.array_equal(rgb[~outside], plain[~outside])  # in gamut: the plain conversion
    assert ((rgb[outside] > 0) & (rgb[outside] < 1)).all()  # outside: chroma reduced into the gamut
    lab_back = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    assert np.abs(lab_back[..., 0] - lum).max() < 0.5  # and L kept


def test_chroma_planes_keep_neutral_gray_neutral():
    lum = np.full((18, 32), 60.0, np.float32)
    u, v = ab_to_chroma(lum, np.zeros((18, 32, 2), np.float32), "bt709", False, (9, 16))
    assert u.shape == (9, 16) and np.abs(u.astype(int) - 128).max() <= 1 and np.abs(v.astype(int) - 128).max() <= 1


def test_camera_frames_become_luma_pictures():
    bgr = scene(24, 32)[..., ::-1].copy()
    pic = picture_from_bgr(bgr, 7)
    assert pic.y.shape == (24, 32) and pic.full_range and pic.matrix == "bt601" and pic.index == 7
    assert picture_from_bgr(bgr[..., 0], 0).y.shape == (24, 32)  # a gray / IR camera
    assert (
        ycbcr_matrix_for(1080) == "bt709" and ycbcr_matrix_for(480) == "bt601" and ycbcr_matrix_for(1080, 5) == "bt601"
    )
