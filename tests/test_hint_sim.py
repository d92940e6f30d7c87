"""The hint simulator: how many hints, where, how large, and which color."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_color.color import rgb_to_lab_np
from realtime_color.guidance.hints import rasterize
from realtime_color.training.hint_sim import HintSampler, batch_hint_maps, hint_maps, hints_from_truth


def test_count_is_geometric_with_zero_common():
    rng = np.random.default_rng(0)
    sampler = HintSampler()
    counts = np.array([sampler.count(rng) for _ in range(20_000)])
    assert abs((counts == 0).mean() - 1 / 8) < 0.01  # no hint at all, 1 time in 8
    assert abs((counts == 1).mean() - (7 / 8) * (1 / 8)) < 0.01
    assert abs(counts.mean() - 7) < 0.3  # geometric(1/8) - 1 has mean 7
    assert counts.max() <= sampler.max_count


def test_patches_are_inside_sized_and_spread():
    rng = np.random.default_rng(1)
    sampler = HintSampler()
    patches = sampler.patches(60, 100, 4000, rng)
    sides = np.array([s for _, _, s in patches])
    assert sides.min() == 1 and sides.max() == 9
    assert all(0 <= y and y + s <= 60 and 0 <= x and x + s <= 100 for y, x, s in patches)
    cy = np.array([y + s / 2 for y, _, s in patches]) / 60
    cx = np.array([x + s / 2 for _, x, s in patches]) / 100
    # Uniform over the picture: every quarter of it gets about a quarter of the hints.
    for lo in (0.0, 0.25, 0.5, 0.75):
        assert abs(((cx >= lo) & (cx < lo + 0.25)).mean() - 0.25) < 0.04
        assert abs(((cy >= lo) & (cy < lo + 0.25)).mean() - 0.25) < 0.04


def test_hint_maps_carry_the_patch_mean_color():
    rng = np.random.default_rng(2)
    ab = np.zeros((2, 32, 32), np.float32)
    ab[0, :, 16:] = 0.5  # the right half is red-ish
    maps = hint_maps(ab, HintSampler(min_size=1, max_size=1), rng, n=40)
    mask = maps[2] > 0
    assert 0 < mask.sum() <= 40
    np.testing.assert_allclose(maps[0][mask], ab[0][mask])  # 1-pixel patches: the pixel's color
    assert (maps[:2][:, ~mask] == 0).all()
    assert hint_maps(ab, HintSampler(), rng, n=0)[2].sum() == 0
    assert batch_hint_maps(np.stack([ab, ab]), HintSampler(), rng).shape == (2, 3, 32, 32)


def test_hints_from_truth_land_on_their_patch_with_its_color():
    truth = np.zeros((40, 80, 3), np.uint8)
    truth[:, :40] = (200, 30, 40)  # red left
    truth[:, 40:] = (40, 90, 210)  # blue right
    hints = hints_from_truth(truth, 30, np.random.default_rng(3), HintSampler(min_size=3, max_size=3))
    assert len(hints) == 30
    lab = rgb_to_lab_np(truth.astype(np.float64) / 255.0)
    for h in hints:
        ab, mask = rasterize((h,), 40, 80)
        ys, xs = np.nonzero(mask[0])
        assert mask.sum() == 9  # the 3x3 patch, at the source size
        inside = lab[ys, xs, 1:]
        if np.ptp(inside, axis=0).max() < 1:  # a patch of one color: the hint is that color
            assert np.linalg.norm(np.array(h.ab) - inside.mean(0)) < 2.0


def test_sampler_refuses_bad_settings():
    with pytest.raises(ValueError):
        HintSampler(p=0)
    with pytest.raises(ValueError):
        HintSampler(min_size=5, max_size=2)
