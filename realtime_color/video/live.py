"""Live sources: the network runs beside the stream, so no frame waits for it.

Under the file policy every keyframe is colorized before its frame moves on (``stages.Infer``):
exact, lossless, deterministic. A live viewer wants the frame now, so under the live policy the
keyframes go to a ``KeyframeWorker`` (one thread per camera; with several cameras its calls meet
in ``backends.batching`` and run as one batch, as before) and every frame is shown at once with
the chroma the temporal step already has:

* Between results, the chroma of the latest finished keyframe is carried along the optical flow
  the temporal step computes anyway (``ChromaTracker.motion``), frame by frame.
* A keyframe sent at frame k comes back at frame n. Meanwhile its frame's position map was
  carried along the same flow (k -> k+1 -> ... -> n), so its prediction is warped straight from
  frame k to frame n and lands where the objects are now, then blended like any keyframe
  (weighted by how well it explains the current L).
* A new shot (a scene cut, a camera switched or reconnected, a new size) drops everything of the
  old one: its chroma, the keyframes still out (their results are thrown away when they return).
  Until the new shot's first keyframe is back its frames are shown gray (neutral chroma, the
  luma untouched): gray is honest, the previous shot's colors on the new scene are not. When it
  returns, the colors fade in over ``FADE_FRAMES`` frames. How long a shot stays gray is one
  network call plus, when the network was busy, the rest of the call in flight; the stats say it
  (``new_shot_gray_ms``).
* One keyframe at most waits for the network: a newer one replaces it (``keyframes_skipped``),
  since its result would be stale anyway.

The stats (``Stats.sample``) say per frame how old its keyframe is (frames and ms since the frame
the network saw), and how many keyframes were out (in the network, or waiting for it).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..threads import name_native_thread
from .pipeline import Stage
from .temporal import TemporalConfig, make_tracker, warp

# Frames over which a new shot's first colors fade in from gray: 4 frames (133 ms at 30 fps) reads
# as a soft arrival, not a flash, and costs the shot little color.
FADE_FRAMES = 4


class KeyframeWorker:
    """The network beside the stream: a thread that colorizes the newest keyframe it was given.

    ``submit`` never blocks; ``results`` hands back what has finished, in order. One keyframe is in
    the network at a time and one more may wait; a newer one takes the waiting one's place."""

    def __init__(self, colorizer, name: str = "keys"):
        self.colorizer = colorizer
        self._cond = threading.Condition()
        self._waiting: tuple | None = None  # (tag, small L, hints, source size)
        self._busy = False
        self._done: deque = deque()
        self._closed = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name=f"rtcolor-{name}", daemon=True)
        self._thread.start()

    def submit(self, tag, lum: np.ndarray, hints=(), source_hw: tuple[int, int] | None = None):
        """Queue ``lum`` (small L, and the user's hints on it, placed in a ``source_hw`` picture, for
        ``Colorizer.predict_small``); returns the tag of the keyframe it replaced, or None."""
        with self._cond:
            replaced = None if self._waiting is None else self._waiting[0]
            self._waiting = (tag, lum, hints, source_hw)
            self._cond.notify()
        return replaced

    def results(self) -> list[tuple]:
        """(tag, ab) of the keyframes finished since the last call; a network failure is raised here."""
        if self.error is not None:
            raise self.error
        out = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def outstanding(self) -> int:
        """Keyframes in the network or waiting for it (0, 1 or 2)."""
        with self._cond:
            return int(self._busy) + int(self._waiting is not None)

    def _serve(self) -> None:
        name_native_thread(self._thread.name)
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._waiting is not None or self._closed)
                if self._closed:
                    return
                (tag, lum, hints, source_hw), self._waiting, self._busy = self._waiting, None, True
            try:  # the Colorizer's own call, as the file path makes it
                if hints:
                    ab = self.colorizer.predict_small([lum], [hints], source_hw)[0]
                else:
                    ab = self.colorizer.predict_small([lum])[0]
                self._done.append((tag, ab))
            except Exception as e:  # noqa: BLE001 - raised in the stage's thread by results()
                self.error = e
            finally:
                with self._cond:
                    self._busy = False
            if self.error is not None:
                return

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking keyframes; a call in flight is let finish (its result is not waited for)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)


@dataclass
class _Out:
    """A keyframe sent to the network: its frame and where each pixel of the current frame was then."""

    shot: int
    index: int
    captured: float
    lum: np.ndarray
    pos: np.ndarray | None = None  # remap positions into the keyframe (None: the frame has not moved)


class LiveChroma:
    """The temporal step of a live source: ``step`` gives a frame's ab at once, never waiting for
    the network (see the module docstring). Drives the ``KeyframeWorker`` it is given."""

    def __init__(self, cfg: TemporalConfig, worker: KeyframeWorker, stats=None):
        self.cfg, self.worker, self.stats = cfg, worker, stats
        self.tracker = make_tracker(cfg)  # only its motion (the flow) is used
        self.shot = 0
        self.prev_L: np.ndarray | None = None
        self.ab: np.ndarray | None = None  # the current frame's chroma, full strength (None: none yet)
        self.out: dict[int, _Out] = {}  # keyframes sent, by frame index
        self.key: tuple[int, float] | None = None  # (index, captured) of the keyframe behind self.ab
        self.shown = 0  # frames shown with color since the shot's first keyframe returned (the fade)
        self.shot_began: tuple[int, float] = (0, 0.0)
        self.last_index = -1

    def _sample(self, name: str, value: float) -> None:
        if self.stats is not None:
            self.stats.sample(name, value)

    def _count(self, name: str, n: int = 1) -> None:
        if self.stats is not None:
            self.stats.count(name, n)

    def step(
        self, lum: np.ndarray, key: bool, cut: bool, index: int, captured: float, hints=(), source_hw=None
    ) -> np.ndarray:
        """Small L (h, w) of frame ``index`` (and on a keyframe the user's hints, placed in a
        ``source_hw`` picture) -> its normalized ab (h, w, 2), at once."""
        if self.prev_L is not None and (lum.shape != self.prev_L.shape or index <= self.last_index):
            cut = key = True  # the source changed size or started again (a camera reconnected): a new shot
        self.last_index = index
        if cut or self.prev_L is None:
            self.shot += 1
            self.out.clear()  # results of the old shot are thrown away when they return
            self.ab, self.key, self.shown = None, None, 0
            self.tracker.reset()
            self.shot_began = (index, captured)
        else:
            maps = self.tracker.motion(self.prev_L, lum)
            if maps is not None:
                if self.ab is not None:
                    self.ab = warp(self.ab, maps)
                for o in self.out.values():  # positions composed: current pixel -> previous -> keyframe
                    o.pos = maps.copy() if o.pos is None else warp(o.pos, maps)
        self.prev_L = lum
        if key:
            self.out[index] = _Out(self.shot, index, captured, lum)
            replaced = self.worker.submit((self.shot, index), lum, hints, source_hw)
            if replaced is not None:
                self.out.pop(replaced[1], None)
                self._count("keyframes_skipped")
        for (shot, k), ab_k in self.worker.results():
            o = self.out.pop(k, None)
            if shot != self.shot or o is None:
                continue  # a keyframe of a shot that has ended
            self._arrive(lum, o, ab_k, index, captured)
        self._sample("network_queue", self.worker.outstanding())
        if self.ab is None:
            self._count("gray_frames")
            return np.zeros((*lum.shape, 2), np.float32)
        self.shown += 1
        self._sample("keyframe_age_frames", index - self.key[0])
        self._sample("keyframe_age_ms", (captured - self.key[1]) * 1000.0)
        if self.shown >= FADE_FRAMES:
            return self.ab
        return self.ab * np.float32(self.shown / FADE_FRAMES)

    def _arrive(self, lum: np.ndarray, o: _Out, ab_k: np.ndarray, index: int, captured: float) -> None:
        """Keyframe ``o``'s prediction, carried from its frame to this one, into the chroma."""
        fresh, warped_L = warp(ab_k, o.pos), warp(o.lum, o.pos)
        if self.ab is None:  # the shot's first colors
            self.ab = np.ascontiguousarray(fresh, np.float32)
            self._sample("new_shot_gray_frames", index - self.shot_began[0])
            self._sample("new_shot_gray_ms", (captured - self.shot_began[1]) * 1000.0)
        else:
            # As a keyframe of the file path: trust the carried chroma only where it explains the
            # current L; occluded or newly uncovered pixels take the prediction.
            match = np.clip(1.0 - np.abs(lum - warped_L) / self.cfg.match_tolerance, 0.0, 1.0)
            w = (self.cfg.smoothing * match)[..., None]
            self.ab = (w * self.ab + (1.0 - w) * fresh).astype(np.float32, copy=False)
        self.key = (o.index, o.captured)
        for k in [k for k in self.out if k < o.index]:  # older ones still out are superseded
            del self.out[k]

    def close(self) -> None:
        self.worker.close()


class LiveTemporal(Stage):
    """The live policy's network and temporal step in one stage: frames never wait for inference."""

    name = "temporal"
    needs_every_item = True  # a dropped cut would carry the old shot's colors into the new one

    def __init__(self, colorizer, cfg: TemporalConfig):
        self.colorizer, self.cfg = colorizer, cfg
        self.chroma: LiveChroma | None = None

    def bind(self, stats) -> None:
        super().bind(stats)
        for name in ("keyframes_skipped", "gray_frames"):
            stats.count(name, 0)
        self.chroma = LiveChroma(self.cfg, KeyframeWorker(self.colorizer), stats)

    def __call__(self, w) -> list:
        w.ab = self.chroma.step(w.lum, w.key, w.cut, w.pic.index, w.pic.captured, w.hints, w.pic.y.shape)
        return [w]

    def flush(self) -> list:
        self.chroma.close()
        return []


__all__ = ["FADE_FRAMES", "KeyframeWorker", "LiveChroma", "LiveTemporal"]
