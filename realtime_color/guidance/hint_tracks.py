"""Hints in video: which hints reach the network on which frame (``--hints`` on colorize and stream).

A hints file (hints.py) holds two kinds of hint, and each travels differently:

* **A hint with a frame or a time** belongs to that frame's shot. The point is followed through
  the shot, forwards and backwards from its frame, by pyramidal Lucas-Kanade on the small L the
  network sees (a few points: a fraction of a millisecond a frame), on the first pass over the video
  that also finds the shots (colored_frames.scan, the pipeline's own cut detector and settings).
  A point is let go where the tracker loses it: its forward-backward error grows, it leaves the
  picture, or the patch under it no longer looks like the one the hint was placed on (something
  walked over it). On a flat patch, where the tracker sees no motion, it stays where it was until
  that patch check lets it go. A scene cut always ends it: a hint never leaks into another shot.
  Backwards, a hint reaches at most ``TrackConfig.max_frames`` frames (the first pass keeps that
  many small frames of the current shot, a few tens of MB); forwards, the whole shot.
* **A frame-less hint** holds for every frame (a fixed camera), but only while the scene under it
  still looks as it did when the hint was placed: the first frame of the video (or of the live
  stream). The gate is the one ``--reference`` applies to its colors (reference.match_weights:
  tone-mapped structure and brightness), judged over the hint's patch, so a person walking across
  a hinted wall is not painted the wall's color; once they have passed, the hint holds again.

Only keyframes (the frames the network runs on) ask for hints; the temporal step carries the
chroma they gave to the frames between.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from .hints import Hint, HintsError, HintSet
from .reference import ReferenceConfig, match_weights

TIME_EPSILON = 1e-6  # seconds: the frame on screen at t is the last one shown at or before t (Shots.index_at)


@dataclass(frozen=True)
class TrackConfig:
    """How frame hints are followed through their shot, and how frame-less hints are gated."""

    window: int = 15  # Lucas-Kanade window (pixels of the small L)
    levels: int = 3  # pyramid levels: a few pixels of motion per frame at the small size
    max_fb_error: float = 1.0  # pixels: a point that does not track back to where it was is lost
    patch: int = 9  # side of the patch compared with the hint's own (pixels of the small L)
    max_patch_change: float = 12.0  # L units (mean |difference|): something else is over the point now
    max_frames: int = 2000  # small frames kept per shot for the backward pass (at 144x256: 74 MB)
    gate_min: float = 0.5  # frame-less hints: the share of the patch that must still match the view
    gate_patch: int = 5  # ... judged over at least this many pixels square (at the gate's resolution)


def _u8(lum: np.ndarray) -> np.ndarray:
    return np.clip(lum * 2.55, 0, 255).astype(np.uint8)


def _patch(u8: np.ndarray, x: float, y: float, side: int) -> np.ndarray:
    h, w = u8.shape
    r = side // 2
    x0, y0 = int(round(x)) - r, int(round(y)) - r
    x0, y0 = min(max(0, x0), max(0, w - side)), min(max(0, y0), max(0, h - side))
    return u8[y0 : y0 + side, x0 : x0 + side].astype(np.float32)


class ShotTracker:
    """The first pass's companion: fed every frame (``__call__``, colored_frames.scan's ``on_frame``)
    and then ``finish``; afterwards ``at(index)`` gives the frame hints on that frame, where the
    tracked points are. ``numbers``: each hint's place in its file, for the errors."""

    def __init__(self, hints: tuple[Hint, ...], numbers: tuple[int, ...] | None = None, cfg: TrackConfig | None = None):
        self.cfg = cfg or TrackConfig()
        self.hints = hints
        self.numbers = numbers or tuple(range(len(hints)))
        self.by_frame: dict[int, list[int]] = {}  # frame index -> hints placed on it (known so far)
        for k, h in enumerate(hints):
            if h.frame is not None:
                self.by_frame.setdefault(h.frame, []).append(k)
        self.pending = sorted((h.time, k) for k, h in enumerate(hints) if h.time is not None)  # not yet a frame
        self.buffer: deque[tuple[int, np.ndarray]] = deque(maxlen=self.cfg.max_frames)  # this shot's frames
        self.active: list[tuple[int, float, float, np.ndarray]] = []  # hint, x, y (pixels), its patch when placed
        self.positions: dict[int, list[tuple[int, float, float]]] = {}  # frame -> (hint, x, y as fractions)
        self.shape: tuple[int, int] | None = None
        self.frames, self.last_time, self.step = 0, 0.0, 0.0

    def __call__(self, index: int, seconds: float, lum: np.ndarray, cut: bool) -> None:
        if self.pending and index > 0:  # time hints whose frame (the previous one) is now known
            while self.pending and self.pending[0][0] + TIME_EPSILON < seconds:
                self.by_frame.setdefault(index - 1, []).append(self.pending.pop(0)[1])
        if index > 0:
            self._place(index - 1)  # the previous frame's hints: the frames of its shot so far are in the buffer
        u8 = _u8(lum)
        if cut or self.shape != u8.shape:
            self.buffer.clear()  # a new shot: no hint crosses the cut, either way
            self.active = []
        elif self.active:
            self.active = self._track(self.buffer[-1][1], u8, self.active, index)
        self.buffer.append((index, u8))
        self.shape = u8.shape
        if self.frames:
            self.step = seconds - self.last_time
        self.frames, self.last_time = index + 1, seconds

    @property
    def duration(self) -> float:
        """Seconds until the last frame stops showing (its start plus one frame's duration)."""
        return self.last_time + max(self.step, 0.0)

    def finish(self, where: str) -> None:
        """The end of the video: a hint past it is refused (``where`` names the file); the rest placed."""
        for k, h in enumerate(self.hints):
            n = self.numbers[k]
            if h.frame is not None and h.frame >= self.frames:
                raise HintsError(
                    f"{where}: hint {n}: frame {h.frame} is past the end of the video "
                    f"({self.frames} frames, 0 to {self.frames - 1})"
                )
            if h.time is not None and h.time > self.duration + TIME_EPSILON:
                raise HintsError(
                    f"{where}: hint {n}: time {h.time:g} s is past the end of the video ({self.duration:.3f} s)"
                )
        for _, k in self.pending:
            self.by_frame.setdefault(self.frames - 1, []).append(k)
        self.pending = []
        if self.frames:
            self._place(self.frames - 1)
        self.buffer.clear()
        self.active = []

    def _record(self, index: int, k: int, x: float, y: float, shape: tuple[int, int]) -> None:
        h, w = shape
        self.positions.setdefault(index, []).append((k, x / max(1, w - 1), y / max(1, h - 1)))

    def _place(self, index: int) -> None:
        """Hints placed on ``index`` (the newest frame in the buffer): tracked back through the
        buffer now, and forwards from the next frame on."""
        ids = self.by_frame.pop(index, None)
        if not ids or not self.buffer or self.buffer[-1][0] != index:
            return
        u8 = self.buffer[-1][1]
        h, w = u8.shape
        placed = []
        for k in ids:
            x, y = self.hints[k].x * (w - 1), self.hints[k].y * (h - 1)
            placed.append((k, x, y, _patch(u8, x, y, self.cfg.patch)))
            self._record(index, k, x, y, u8.shape)
        self.active.extend(placed)
        frames = list(self.buffer)
        back = placed
        for (j, older), (_, newer) in zip(frames[-2::-1], frames[::-1], strict=False):
            back = self._track(newer, older, back, j)
            if not back:
                break

    def _track(self, a: np.ndarray, b: np.ndarray, points: list, index: int) -> list:
        """Points on frame ``a`` -> where they are on ``b`` (frame ``index``); lost ones are let go."""
        if not points:
            return []
        cfg = self.cfg
        p0 = np.float32([[x, y] for _, x, y, _ in points]).reshape(-1, 1, 2)
        lk = {"winSize": (cfg.window, cfg.window), "maxLevel": cfg.levels}
        p1, st, _ = cv2.calcOpticalFlowPyrLK(a, b, p0, None, **lk)
        back, _, _ = cv2.calcOpticalFlowPyrLK(b, a, p1, None, **lk)
        fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
        h, w = b.shape
        kept = []
        for (k, x0, y0, ref), (x, y), ok, err in zip(points, p1.reshape(-1, 2), st, fb, strict=True):
            if not ok[0]:  # a flat patch (a wall, a uniform coat): no motion to see, so it stays put ...
                x, y = x0, y0
            elif err > cfg.max_fb_error:
                continue  # lost: it does not track back to where it was
            x, y = float(x), float(y)
            if not (0 <= x <= w - 1 and 0 <= y <= h - 1):
                continue  # out of the picture
            # ... and, as every point, is let go when the patch under it no longer looks like the hint's
            if float(np.abs(_patch(b, x, y, cfg.patch) - ref).mean()) / 2.55 > cfg.max_patch_change:
                continue  # something else is over the point now
            kept.append((k, x, y, ref))
            self._record(index, k, x, y, b.shape)
        return kept

    def at(self, index: int) -> tuple[Hint, ...]:
        """The frame hints on frame ``index``, each where its point is on that frame."""
        return tuple(
            replace(self.hints[k], x=min(1.0, max(0.0, x)), y=min(1.0, max(0.0, y)))
            for k, x, y in self.positions.get(index, ())
        )


class FixedHints:
    """Frame-less hints, each applied while the scene under it still looks as it did on the first
    frame (the view they were placed on)."""

    def __init__(self, hints: tuple[Hint, ...], cfg: TrackConfig | None = None, ref: ReferenceConfig | None = None):
        self.hints, self.cfg, self.ref = hints, cfg or TrackConfig(), ref or ReferenceConfig()
        self.view: np.ndarray | None = None
        self.shape: tuple[int, int] | None = None

    def _work(self, lum: np.ndarray) -> np.ndarray:
        h, w = lum.shape
        s = min(1.0, self.ref.work_side / max(h, w))  # coarse enough to average sensor noise out (as reference.py)
        size = (max(8, round(w * s)), max(8, round(h * s)))
        return cv2.resize(lum.astype(np.float32), size, interpolation=cv2.INTER_AREA)

    def gate(self, lum: np.ndarray) -> np.ndarray:
        """How surely each hint still applies on this frame (``lum``: its small L), 0..1 per hint."""
        work = self._work(lum)
        if self.view is None or self.shape != lum.shape:  # the first frame (or a new view size) is the view
            self.view, self.shape = work, lum.shape
        weights = match_weights(work, self.view, self.ref)
        h, w = weights.shape
        out = np.empty(len(self.hints), np.float32)
        for i, hint in enumerate(self.hints):
            side = max(self.cfg.gate_patch, int(round(hint.size * w / max(1, lum.shape[1]))))
            out[i] = float(_patch(weights, hint.x * (w - 1), hint.y * (h - 1), side).mean())
        return out

    def for_frame(self, lum: np.ndarray) -> tuple[Hint, ...]:
        if not self.hints:
            return ()
        keep = self.gate(lum) >= self.cfg.gate_min
        return tuple(h for h, k in zip(self.hints, keep, strict=True) if k)


class VideoHints:
    """The hints of one video or stream: ``for_frame(index, small_L)`` -> the hints for the network."""

    def __init__(self, hints: HintSet, tracks: ShotTracker | None = None, cfg: TrackConfig | None = None):
        self.source = hints
        self.fixed = FixedHints(hints.frameless(), cfg)
        self.tracks = tracks

    def __len__(self) -> int:
        return len(self.source)

    def for_frame(self, index: int, lum: np.ndarray) -> tuple[Hint, ...]:
        placed = self.tracks.at(index) if self.tracks is not None else ()
        return self.fixed.for_frame(lum) + placed


def scan_hints(hints: HintSet, src: Path, size: int, temporal, where: str, cfg: TrackConfig | None = None):
    """The first pass over ``src`` for its hints: the shots (colored_frames.Shots) found and the
    frame hints followed through theirs; a hint past the end is refused (``where`` names the file).
    Returns the ``VideoHints`` for the pipeline and the ``Shots``."""
    from .colored_frames import scan

    numbers = tuple(i for i, h in enumerate(hints.hints) if not h.frameless)
    tracker = ShotTracker(tuple(hints.hints[i] for i in numbers), numbers, cfg)
    shots = scan(Path(src), size, temporal, on_frame=tracker)
    tracker.finish(where)
    return VideoHints(hints, tracker, cfg), shots
