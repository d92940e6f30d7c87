"""Where each hint is on the frame being previewed, by the same rules ``colorize`` and ``stream`` use.

* A frame hint is followed through its shot (``guidance.hint_tracks.ShotTracker``: Lucas-Kanade on
  the small L, let go where the point is lost, never across a cut). The editor runs the tracker over
  one shot, on the small frames its first pass kept, each time the hints of that shot change.
* A frame-less hint holds while the scene under it still looks as on the first frame (the gate of
  ``hint_tracks.FixedHints``); where it is held off, the page shows it so ("something moved in front").

A video too long to keep its small frames falls back to keeping each frame hint where it was put,
within its shot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..guidance.hint_tracks import FixedHints, ShotTracker
from ..guidance.hints import Hint


@dataclass(frozen=True)
class Placed:
    """One hint as it stands on a frame: its place in the file, where it is, whether it applies."""

    index: int
    hint: Hint
    held: bool = True  # False: a frame-less hint the gate holds off on this frame
    carried: bool = False  # a frame hint placed on another frame of this shot

    def to_json(self) -> dict:
        return {"i": self.index, "x": round(self.hint.x, 6), "y": round(self.hint.y, 6), "held": self.held,
                "carried": self.carried}  # fmt: skip


def gate(frameless: list[tuple[int, Hint]], view: np.ndarray | None, lum: np.ndarray | None) -> list[Placed]:
    """Frame-less hints on a frame whose small L is ``lum``, gated against the first frame's ``view``."""
    if not frameless:
        return []
    if view is None or lum is None or view.shape != lum.shape:
        return [Placed(i, h) for i, h in frameless]
    fixed = FixedHints(tuple(h for _, h in frameless))
    fixed.gate(view)  # the first call sets the view the hints were placed on
    keep = fixed.gate(lum) >= fixed.cfg.gate_min
    return [Placed(i, h, held=bool(k)) for (i, h), k in zip(frameless, keep, strict=True)]


class ShotCarrier:
    """The frame hints of a video, followed through their shots for the preview (cached per change)."""

    def __init__(self, media):
        self.media = media
        self._cache: dict[tuple[int, int], tuple[ShotTracker, tuple[int, ...]]] = {}

    def _span(self, shot: int) -> tuple[int, int]:
        cuts = self.media.cuts
        return cuts[shot], (cuts[shot + 1] if shot + 1 < len(cuts) else self.media.frames)

    def _frame_of(self, h: Hint) -> int:
        return h.frame if h.frame is not None else self.media.index_at(float(h.time))

    def placed(self, hints: tuple[Hint, ...], rev: int, index: int) -> list[Placed]:
        """Every hint that holds on frame ``index`` (rev: the hint list's version, for the cache)."""
        media = self.media
        frameless = [(i, h) for i, h in enumerate(hints) if h.frameless]
        out = gate(frameless, media.small(0), media.small(index))
        shot = media.shot(index)
        start, end = self._span(shot)
        mine = [(i, h) for i, h in enumerate(hints) if not h.frameless and start <= self._frame_of(h) < end]
        if not mine:
            return out
        smalls = [media.small(k) for k in range(start, end)]
        if any(s is None for s in smalls):  # not kept (a long video): the hint stays where it was put
            return out + [Placed(i, h, carried=self._frame_of(h) != index) for i, h in mine]
        key = (rev, shot)
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[0] == rev}  # older versions are stale
            numbers = tuple(i for i, _ in mine)
            tracker = ShotTracker(tuple(h for _, h in mine), numbers)
            for k, lum in zip(range(start, end), smalls, strict=True):
                tracker(k, media.times[k], lum, k == start)
            tracker.finish("the page's hints")
            self._cache[key] = (tracker, numbers)
        tracker, numbers = self._cache[key]
        for k, x, y in tracker.positions.get(index, ()):
            h = tracker.hints[k]
            moved = Hint(min(1.0, max(0.0, x)), min(1.0, max(0.0, y)), h.color, h.size, h.frame, h.time)
            out.append(Placed(numbers[k], moved, carried=self._frame_of(h) != index))
        return out
