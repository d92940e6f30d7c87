"""Where flicker is removed: scene cuts, keyframes, chroma carried between them, smoothing over time.

Everything here works on the small L the network sees (e.g. 144x256 for 16:9), so it costs a few
milliseconds a frame whatever the video size.

* Scene cuts are found from luminance alone: the distance between L histograms of consecutive
  frames, or a spike of the mean difference of 32x18 thumbnails far above its recent median (a pan
  keeps that median high, a cut does not); a cut forces a keyframe and resets all temporal state,
  so color never smears across it.
* Keyframes: the network runs on every K-th frame and at every cut. In a still scene (under 1% of
  the 32x18 thumbnail changed since the last keyframe) the interval stretches up to
  ``static_stretch`` x K, which spares an idle surveillance camera most network calls; past K
  frames, the first frame that is no longer still is a keyframe. Between
  keyframes the chroma of the previous frame is carried to the current one along dense optical
  flow (DIS) computed on L, so moving objects keep their color instead of leaving it behind.
* Smoothing: at a keyframe the new prediction is blended with the carried chroma, weighted by how
  well the carried frame explains the current L (occlusions and new content get the new color).
  With K = 1 this is a motion-compensated exponential moving average.
* The method that carries chroma between frames is chosen by name in the config
  (``TemporalConfig.method``, one of ``TRACKERS``): ``flow`` (optical flow) or ``still`` (in place).
  A new method is one new ``ChromaTracker`` subclass with its own ``_carry``, added to ``TRACKERS``.
  Its ``motion`` (where each pixel was in the previous frame) is also what a live source composes
  over several frames to carry a late keyframe's prediction to the current frame (``live``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

HIST_BINS = 32
# Keyframe interval: the network on every 16th frame. Measured (tools/keyframe_sweep.py) it is
# the smallest K that keeps a 720p clip within 4x of a plain transcode on a 2-core CPU, and on the
# generated clips no quality is lost against K = 1 (carrying and smoothing even reduce flicker).
DEFAULT_K = 16


@dataclass
class TemporalConfig:
    """How chroma follows time. ``keyframe_interval`` 1 runs the network on every frame."""

    keyframe_interval: int = DEFAULT_K
    smoothing: float = 0.6  # 0: off; weight of the carried chroma where it explains L perfectly
    cut_threshold: float = 0.3  # L-histogram distance (0..1) above which a frame starts a new scene
    cut_spike: float = 5.0  # ... or a thumbnail difference this many times its recent median
    cut_min_diff: float = 2.0  # (L units) below which a thumbnail difference is never a cut
    method: str = "flow"  # how chroma is carried between frames: a name in TRACKERS (flow, still)
    match_tolerance: float = 6.0  # L units: a warped pixel this far from the current L is not trusted
    static_stretch: int = 4  # a still scene stretches the keyframe interval (K > 1) up to this many K (1: never)
    static_change: float = 0.01  # ... still: under this fraction of thumbnail cells changed since the keyframe
    static_tolerance: float = 2.0  # ... by more than this many L units (sensor noise averages out below it)

    def __post_init__(self):
        if self.keyframe_interval < 1:
            raise ValueError(f"keyframe interval {self.keyframe_interval} must be at least 1")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing {self.smoothing} must be in [0, 1)")
        if self.static_stretch < 1:
            raise ValueError(f"static stretch {self.static_stretch} must be at least 1 (1: off)")
        if self.method not in TRACKERS:
            raise ValueError(f"temporal method {self.method!r} is unknown; use one of {', '.join(TRACKERS)}")


def l_histogram(lum: np.ndarray) -> np.ndarray:
    """Normalized histogram of L (0..100) on HIST_BINS bins."""
    hist, _ = np.histogram(lum, bins=HIST_BINS, range=(0.0, 100.0))
    return hist / max(1, lum.size)


class KeyframePolicy:
    """Decides, frame by frame in order, which frames are scene cuts and which run the network."""

    def __init__(self, cfg: TemporalConfig):
        self.cfg = cfg
        self.prev_hist: np.ndarray | None = None
        self.prev_thumb: np.ndarray | None = None
        self.recent: deque[float] = deque(maxlen=12)
        self.since_key = 0
        self.key_thumb: np.ndarray | None = None  # the thumbnail at the last keyframe

    def decide(self, lum: np.ndarray) -> tuple[bool, bool]:
        """Small L (h, w) -> (keyframe, cut). The first frame is both."""
        hist = l_histogram(lum)
        thumb = cv2.resize(lum, (32, 18), interpolation=cv2.INTER_AREA)
        if self.prev_hist is None or self.prev_thumb.shape != thumb.shape:
            cut = True
        else:
            diff = float(np.abs(thumb - self.prev_thumb).mean())
            typical = float(np.median(self.recent)) if self.recent else diff
            spike = diff > self.cfg.cut_min_diff and diff > self.cfg.cut_spike * max(typical, 0.1)
            cut = spike or 0.5 * float(np.abs(hist - self.prev_hist).sum()) > self.cfg.cut_threshold
            self.recent.append(diff)
        if cut:
            self.recent.clear()
        self.prev_hist, self.prev_thumb = hist, thumb
        n, k = self.since_key + 1, self.cfg.keyframe_interval
        key = cut or n >= k
        if key and not cut and k > 1 and n < k * self.cfg.static_stretch and self._still(thumb):  # K = 1: every frame
            key = False
        if key:
            self.key_thumb = thumb
        self.since_key = 0 if key else n
        return key, cut

    def _still(self, thumb: np.ndarray) -> bool:
        changed = np.abs(thumb - self.key_thumb) > self.cfg.static_tolerance
        return float(changed.mean()) < self.cfg.static_change


class ChromaTracker:
    """Carries ab from frame to frame and blends in new predictions. Subclasses say how chroma is
    carried (``_carry``); ``make_tracker`` picks one by the config's ``method``."""

    def __init__(self, cfg: TemporalConfig):
        self.cfg = cfg
        self.prev_L: np.ndarray | None = None
        self.prev_ab: np.ndarray | None = None

    def reset(self) -> None:
        self.prev_L = self.prev_ab = None

    def _carry(self, lum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The previous frame's (ab, L) brought to where the current frame ``lum`` has them."""
        raise NotImplementedError

    def step(self, lum: np.ndarray, ab_new: np.ndarray | None, cut: bool) -> np.ndarray:
        """Small L (h, w) and, on keyframes, the network's ab (h, w, 2) -> this frame's ab (h, w, 2)."""
        if self.prev_L is not None and lum.shape != self.prev_L.shape:
            self.reset()  # the source changed size (e.g. a camera reconnected)
        if cut or self.prev_L is None:
            if ab_new is None:
                raise ValueError("a scene cut (or the first frame) needs a network prediction")
            self.reset()
            self.prev_L, self.prev_ab = lum, ab_new
            return ab_new
        carried, warped_L = self._carry(lum)
        if ab_new is None:
            ab = carried
        else:
            # Trust the carried chroma only where it explains the current L: occluded or newly
            # uncovered pixels take the fresh prediction.
            match = np.clip(1.0 - np.abs(lum - warped_L) / self.cfg.match_tolerance, 0.0, 1.0)
            w = (self.cfg.smoothing * match)[..., None]
            ab = w * carried + (1.0 - w) * ab_new
        self.prev_L, self.prev_ab = lum, ab.astype(np.float32, copy=False)
        return self.prev_ab


class StillTracker(ChromaTracker):
    """Carries the chroma in place (no motion compensation): the cheapest method (--no-flow)."""

    def motion(self, prev_L: np.ndarray, lum: np.ndarray) -> np.ndarray | None:
        """Where each pixel of ``lum`` was in ``prev_L``, as remap positions (h, w, 2); None: in place."""
        return None

    def _carry(self, lum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.prev_ab, self.prev_L


class FlowTracker(ChromaTracker):
    """Carries the chroma along dense optical flow (DIS) computed on L."""

    def __init__(self, cfg: TemporalConfig):
        super().__init__(cfg)
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._grid: np.ndarray | None = None
        self._prev_u8: np.ndarray | None = None  # prev_L as the flow's 8-bit input

    def reset(self) -> None:
        super().reset()
        self._prev_u8 = None

    def motion(self, prev_L: np.ndarray, lum: np.ndarray) -> np.ndarray:
        """Where each pixel of ``lum`` was in ``prev_L`` (the frame before it), as remap positions
        (h, w, 2). Consecutive calls must pass consecutive frames: the previous 8-bit L is reused."""
        cur = np.clip(lum * 2.55, 0, 255).astype(np.uint8)
        if self._prev_u8 is None or self._prev_u8.shape != cur.shape:
            self._prev_u8 = np.clip(prev_L * 2.55, 0, 255).astype(np.uint8)
        flow = self.flow.calc(cur, self._prev_u8, None)  # cur(x) ~ prev(x + flow(x))
        self._prev_u8 = cur  # the next frame's previous: converted once
        h, w = lum.shape
        if self._grid is None or self._grid.shape[:2] != (h, w):
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = np.stack([gx, gy], axis=-1)
        return self._grid + flow

    def _carry(self, lum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        maps = self.motion(self.prev_L, lum)
        return warp(self.prev_ab, maps), warp(self.prev_L, maps)


def warp(img: np.ndarray, maps: np.ndarray | None) -> np.ndarray:
    """``img`` of an earlier frame brought to the current one by ``maps`` (remap positions; None: in place)."""
    if maps is None:
        return img
    return cv2.remap(img, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


TRACKERS: dict[str, type[ChromaTracker]] = {"flow": FlowTracker, "still": StillTracker}


def make_tracker(cfg: TemporalConfig) -> ChromaTracker:
    """The tracker the config names (``cfg.method``)."""
    return TRACKERS[cfg.method](cfg)
