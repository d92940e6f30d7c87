"""User-colored frames (``colorize --color-frames DIR``): an archivist colors one frame per shot
by hand and its colors are carried through the shot, forwards and backwards.

Each colored frame is a reference (reference.py) for the frames of its own shot only: every
frame of the shot is aligned to it (the camera may pan or zoom a little) and takes its chroma
wherever the structure matches, the network filling what the colored frame could not show
(occlusions, new content, what moved). With several colored frames in one shot, each pixel takes
the best match, the nearer frame in time trusted more. A scene cut ends a colored frame's reach:
the shots are found by a first pass over the video with the same cut detector the pipeline uses.

Names: ``000120.png`` is frame 120 (counted from 0); ``12.5s.png`` the frame shown at 12.5 s.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .reference import Reference, ReferenceConfig, ReferencePictureError, blend_references

NAME = re.compile(r"^(?:(?P<index>\d+)|(?P<seconds>\d+(?:\.\d+)?)s)$")
MAX_L_DIFFERENCE = 10.0  # mean |L| difference (0-100) between a colored frame and its video frame


@dataclass
class Shots:
    """What the first pass learned: where the cuts are, each frame's time, and the L of the frames
    that were colored (to check them)."""

    cuts: list[int]  # frame indices that start a shot (0 first)
    times: list[float]  # seconds, per frame
    lum: dict[int, np.ndarray] = field(default_factory=dict)  # full-resolution L of chosen frames

    def shot(self, index: int) -> int:
        return bisect.bisect_right(self.cuts, index) - 1

    def index_at(self, seconds: float) -> int:
        """The frame on screen at ``seconds``."""
        return max(0, bisect.bisect_right(self.times, seconds + 1e-6) - 1)


def parse_names(folder: Path) -> list[tuple[Path, int | None, float | None]]:
    """The colored frames in ``folder``: (path, frame index or None, seconds or None)."""
    from ..media.images import IMAGE_SUFFIXES

    if not folder.is_dir():
        raise ReferencePictureError(f"--color-frames {folder}: not a folder")
    found = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        m = NAME.match(p.stem)
        if not m:
            raise ReferencePictureError(
                f"{p.name}: name a colored frame by its index (000120.png) or its time in seconds (12.5s.png)"
            )
        found.append((p, int(m["index"]) if m["index"] else None, float(m["seconds"]) if m["seconds"] else None))
    if not found:
        raise ReferencePictureError(f"--color-frames {folder}: no pictures named 000120.png or 12.5s.png")
    return found


def scan(src: Path, size: int, temporal, want=(), want_seconds=(), on_frame=None) -> Shots:
    """First pass over ``src``: scene cuts (the pipeline's own detector and settings), frame
    times, and the full-resolution L of the frames in ``want`` (indices) or at ``want_seconds``.
    ``on_frame(index, seconds, small_L, cut)``, if given, sees every frame as the detector did
    (the hints follow their points through the shots on this pass: hint_tracks.py)."""
    import av

    from ..color import luma_to_L_table
    from ..runtime.colorizer import inference_shape, luma_to_small_L
    from ..video.temporal import KeyframePolicy

    policy, shots = KeyframePolicy(temporal), Shots(cuts=[], times=[])
    kept: dict[int, tuple[np.ndarray, bool]] = {}
    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(c.decode(stream)):
            y = frame.to_ndarray(format="gray")
            full = frame.color_range == 2  # AVCOL_RANGE_JPEG
            small = luma_to_small_L(y, full, inference_shape(*y.shape, size))
            cut = policy.decide(small)[1]
            if cut:
                shots.cuts.append(i)
            t = float(frame.time) if frame.time is not None else i / float(stream.average_rate or 25)
            shots.times.append(t)
            if on_frame is not None:
                on_frame(i, t, small, cut)
            if i in want or any(abs(t - s) <= 1.0 for s in want_seconds):
                kept[i] = (y, full)
    for i in set(want) | {shots.index_at(s) for s in want_seconds}:
        if i in kept:
            shots.lum[i] = luma_to_L_table(kept[i][1])[kept[i][0]]
    return shots


class ColorFrames:
    """The colored frames of one video, applied frame by frame inside their shots."""

    def __init__(self, folder: Path, src: Path, size: int, temporal, cfg: ReferenceConfig | None = None):
        named = parse_names(Path(folder))
        want = {i for _, i, _ in named if i is not None}
        self.shots = scan(Path(src), size, temporal, want, [s for _, _, s in named if s is not None])
        n = len(self.shots.times)
        self.frames: list[tuple[int, Reference]] = []
        for path, index, seconds in named:
            index = index if index is not None else self.shots.index_at(seconds)
            if index >= n:
                raise ReferencePictureError(
                    f"{path.name}: the video has {n} frames (0 to {n - 1}); there is no frame {index}"
                )
            ref = Reference(path, cfg)
            self._check(path, index, ref)
            self.frames.append((index, ref))

    def _check(self, path: Path, index: int, ref: Reference) -> None:
        import cv2

        lum = self.shots.lum[index]
        h, w = lum.shape
        rh, rw = ref.lab.shape[:2]
        if abs((rw / rh) / (w / h) - 1.0) > ref.cfg.max_aspect_change:
            raise ReferencePictureError(f"{path.name} is {rw}x{rh} but frame {index} is {w}x{h}: another framing")
        theirs = cv2.resize(ref.lab[..., 0], (w, h), interpolation=cv2.INTER_AREA)
        diff = float(np.abs(theirs - lum).mean())
        if diff > MAX_L_DIFFERENCE:
            raise ReferencePictureError(
                f"{path.name} does not match frame {index}: its luminance differs by {diff:.1f} on average "
                f"(allowed {MAX_L_DIFFERENCE:g} of 100); is it that frame, colored?"
            )

    def apply(self, index: int, full_L: np.ndarray, lum: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """Frame ``index`` (its full-resolution L, small L and ab (h, w, 2)) with the colored frames
        of its shot blended in; frames of other shots are left as they are."""
        shot = self.shots.shot(index)
        mine = [(k, r) for k, r in self.frames if self.shots.shot(k) == shot]
        if not mine:
            return ab
        for _, r in mine:  # the camera moves within a shot: aligned anew on every frame
            r.fit(full_L, ab.shape[:2], strict=False)
        near = np.array([1.0 / (1.0 + abs(index - k)) for k, _ in mine])
        return blend_references([r for _, r in mine], lum, ab, priors=near / near.max())
