"""Scene cuts, keyframes, chroma carried along motion, smoothing; and the temporal metrics."""

from __future__ import annotations

import numpy as np
import pytest

from realtime_color.evaluation.metrics import TemporalScores, channel_histograms, js_divergence
from realtime_color.video.temporal import KeyframePolicy, TemporalConfig, make_tracker


def textured_L(h=72, w=128, seed=0, shift=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(20, 80, (h, w + 64)).astype(np.float32)
    import cv2

    base = cv2.GaussianBlur(base, (0, 0), 2.0)
    return np.ascontiguousarray(base[:, 32 - shift : 32 - shift + w])


def test_keyframe_interval_and_cuts():
    policy = KeyframePolicy(TemporalConfig(keyframe_interval=4, cut_threshold=0.3, static_stretch=1))
    a = textured_L(seed=0)
    b = np.clip(a * 0.3 + 60, 0, 100)  # a different scene: brighter, flatter histogram
    decisions = [policy.decide(a) for _ in range(9)] + [policy.decide(b), policy.decide(b)]
    keys = [k for k, _ in decisions]
    cuts = [c for _, c in decisions]
    assert cuts == [True] + [False] * 8 + [True, False]
    assert keys == [True, False, False, False, True, False, False, False, True, True, False]


def key_indices(cfg, frames):
    policy = KeyframePolicy(cfg)
    return [i for i, f in enumerate(frames) if policy.decide(f)[0]]


def test_a_still_scene_stretches_the_keyframe_interval_and_change_ends_it():
    cfg = TemporalConfig(keyframe_interval=4, static_stretch=4)
    rng = np.random.default_rng(1)
    a = textured_L(seed=0)
    noisy = [a + rng.normal(0, 1.5, a.shape).astype(np.float32) for _ in range(40)]  # sensor noise only
    assert key_indices(cfg, noisy) == [0, 16, 32]  # every 4 K, not every K
    assert key_indices(TemporalConfig(keyframe_interval=4, static_stretch=1), noisy) == list(range(0, 40, 4))
    assert key_indices(TemporalConfig(keyframe_interval=1), noisy) == list(range(40))  # K = 1 means every frame
    moving = [textured_L(seed=0, shift=t) for t in range(20)]  # the camera pans: every K as before
    assert key_indices(cfg, moving) == [0, 4, 8, 12, 16]
    drift = [a + 0.2 * t for t in range(20)]  # light rising slowly: a keyframe once it adds up (> 2 L)
    assert key_indices(cfg, drift) == [0, 11]  # 11 x 0.2 > 2: the first frame past K that is not still
    walker = [a.copy() for _ in range(12)]  # something small enters at frame 6
    for f in walker[6:]:
        f[20:40, 30:50] += 25
    assert key_indices(cfg, walker) == [0, 6]  # past K, the frame it appears in is a keyframe


def test_chroma_follows_motion():
    """A red patch moving right: the carried chroma moves with it (optical flow on L)."""
    tracker = make_tracker(TemporalConfig(keyframe_interval=100))
    lum0 = textured_L(shift=0)
    ab0 = np.zeros((*lum0.shape, 2), np.float32)
    ab0[30:40, 50:60, 0] = 0.5  # 'red' where the texture is at x 50..60
    tracker.step(lum0, ab0, cut=True)
    out = None
    for s in range(1, 5):
        out = tracker.step(textured_L(shift=2 * s), None, cut=False)
    # after 8 px of motion the patch should sit at x 58..68
    assert out[32:38, 60:66, 0].mean() > 0.35
    assert out[32:38, 50:54, 0].mean() < 0.15


def test_smoothing_reduces_flicker_and_cuts_reset():
    lum = textured_L()
    rng = np.random.default_rng(1)
    truth = np.full((*lum.shape, 2), 0.2, np.float32)
    noisy = [truth + rng.normal(0, 0.05, truth.shape).astype(np.float32) for _ in range(20)]

    def run(smoothing):
        t = make_tracker(TemporalConfig(keyframe_interval=1, smoothing=smoothing))
        outs = [t.step(lum, n, cut=i == 0) for i, n in enumerate(noisy)]
        return np.mean([np.abs(b - a).mean() for a, b in zip(outs, outs[1:], strict=False)]), t

    raw, _ = run(0.0)
    smooth, tracker = run(0.8)
    assert smooth < raw * 0.5
    fresh = np.full_like(truth, -0.3)
    assert np.allclose(tracker.step(lum, fresh, cut=True), fresh)  # a cut drops the history


def test_bad_temporal_options():
    with pytest.raises(ValueError, match="at least 1"):
        TemporalConfig(keyframe_interval=0)
    with pytest.raises(ValueError, match="smoothing"):
        TemporalConfig(smoothing=1.5)
    with pytest.raises(ValueError, match="static stretch"):
        TemporalConfig(static_stretch=0)


def test_js_divergence_and_histograms():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    h = channel_histograms(img)
    assert h.shape == (3, 256) and np.allclose(h.sum(1), 1)
    assert js_divergence(h, h) == 0.0
    black, white = channel_histograms(np.zeros_like(img)), channel_histograms(np.full_like(img, 255))
    assert js_divergence(black, white) == pytest.approx(np.log(2))


def test_temporal_scores_known_values():
    lum = np.full((40, 40), 50.0, np.float32)
    still = np.full((40, 40, 3), 120, np.uint8)
    s = TemporalScores(scale=1.0)
    for _ in range(5):
        s.add(still, lum)
    assert s.result() == {"flicker": 0.0, "cdc": 0.0}
    import cv2

    a = cv2.cvtColor(np.full((1, 1, 3), 120 / 255, np.float32), cv2.COLOR_RGB2Lab)[0, 0]
    red = still.copy()
    red[..., 0] = 160
    b = cv2.cvtColor(np.full((1, 1, 3), [160 / 255, 120 / 255, 120 / 255], np.float32), cv2.COLOR_RGB2Lab)[0, 0]
    s = TemporalScores(scale=1.0, static_tol=100)  # everything counts as static
    s.add(still, lum)
    s.add(red, lum)
    assert s.result()["flicker"] == pytest.approx(float(np.hypot(*(b[1:] - a[1:]))), rel=1e-4)


def test_a_pan_is_not_a_cut_but_a_jump_is():
    policy = KeyframePolicy(TemporalConfig(keyframe_interval=1000))
    cuts = [policy.decide(textured_L(w=96, shift=s))[1] for s in range(0, 30, 2)]  # steady pan
    assert cuts == [True] + [False] * 14
    layout = np.where(np.arange(96) < 48, 12.0, -12.0).astype(np.float32)
    other = textured_L(w=96, seed=5) + layout  # different large-scale layout: a cut
    assert policy.decide(other)[1]


def test_the_temporal_method_is_chosen_by_its_config():
    from realtime_color.video.temporal import TRACKERS, FlowTracker, StillTracker

    assert isinstance(make_tracker(TemporalConfig()), FlowTracker)
    assert isinstance(make_tracker(TemporalConfig(method="still")), StillTracker)
    with pytest.raises(ValueError, match="'wobble' is unknown; use one of flow, still"):
        TemporalConfig(method="wobble")
    lum = np.full((18, 32), 50.0, np.float32)
    ab = np.full((18, 32, 2), 0.2, np.float32)
    for method in TRACKERS:  # any method: the first frame takes the prediction, the next carries it
        t = make_tracker(TemporalConfig(method=method))
        assert np.array_equal(t.step(lum, ab, cut=True), ab)
        assert np.allclose(t.step(lum, None, cut=False), ab, atol=1e-5)
