"""A camera's own color footage as training data (``rtcolor adapt``).

A surveillance camera records color by day and infrared by night; an archive has a few color
reels beside the gray ones. Their color footage is the best training data there is. This
samples frames from it (skipping near-duplicates: a static camera repeats itself) and holds out
the last part of each source *in time* for validation (neighboring frames would leak otherwise).
The trainer (``trainer.py``, configured by ``config.adapt_config``) then fine-tunes on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import NotFoundError
from ..media.images import IMAGE_SUFFIXES, ImageReadError, expand_inputs, is_gray
from ..media.sources import read_still
from .config import FootageConfig
from .data import DataError


@dataclass
class Frames:
    """Frames sampled from footage: the training ones, the held-out ones (each source's end), and
    what was skipped."""

    train: list[np.ndarray]
    val: list[np.ndarray]
    skipped_duplicates: int = 0
    skipped_gray: int = 0
    per_source: dict = field(default_factory=dict)
    skipped_unreadable: list[str] = field(default_factory=list)


def _small(rgb: np.ndarray, long_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = long_side / max(h, w)
    if s >= 1:
        return np.ascontiguousarray(rgb)
    return cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def _video_frames(path: Path, max_frames: int):
    from ..media.frames import Policy, pictures
    from ..media.sources import open_source

    source = open_source(path, Policy.FILE, kind="file", chroma=True)
    try:
        # Spread the samples over the whole source (the held-out part must be its real end).
        total = source.info.frames
        step = max(1, total // max_frames) if total else 1
        for pic in pictures(source):
            if pic.index % step == 0:
                yield pic.decoded_rgb()  # read with the matrix and range the file declares
    finally:
        source.close()


def _pictures(paths: list[Path], unreadable: list[str], log):
    """The readable pictures of ``paths`` in name order; the others are logged and listed."""
    for path in sorted(paths):
        try:
            yield read_still(path).pixels[..., :3]
        except ImageReadError as e:  # one damaged frame must not cost the whole run
            unreadable.append(str(path))
            log(f"skipped {e}")


def sample_frames(sources: list[str], cfg: FootageConfig, val_fraction: float, log=print) -> Frames:
    """Color frames from videos, folders and pictures, in time order, de-duplicated, and split:
    the last ``val_fraction`` of each source is held out."""
    from ..media.video import VIDEO_SUFFIXES

    train, val = [], []
    dup = gray = 0
    per_source, unreadable = {}, []
    for src in sources:
        p = Path(src)
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            frames = _video_frames(p, cfg.max_frames)
        else:
            paths, _ = expand_inputs([src], suffixes=IMAGE_SUFFIXES)
            if not paths:
                raise NotFoundError(f"{src}: no color video or pictures found")
            frames = _pictures(paths, unreadable, log)
        kept, last = [], None
        for rgb in frames:
            if rgb.dtype == np.uint16:
                rgb = (rgb >> 8).astype(np.uint8)
            if rgb.ndim == 2 or is_gray(rgb):
                gray += 1
                continue
            small = _small(rgb, cfg.frame_long_side)
            lum = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32) * (100 / 255)
            thumb = cv2.resize(lum, (64, 36), interpolation=cv2.INTER_AREA)
            # "Moved" = more than 3 L units: above sensor noise at thumbnail scale, below any object.
            if last is not None and float((np.abs(thumb - last) > 3.0).mean()) < cfg.dedup:
                dup += 1
                continue
            kept.append(small)
            last = thumb
            if len(kept) >= cfg.max_frames:
                break
        n_val = max(1, round(len(kept) * val_fraction)) if len(kept) >= 2 else 0
        train += kept[: len(kept) - n_val]
        val += kept[len(kept) - n_val :]
        per_source[src] = {"train": len(kept) - n_val, "val": n_val}
        log(f"{src}: {len(kept)} frames kept ({len(kept) - n_val} train, {n_val} validation, the last in time)")
    if len(train) < 2 or not val:
        raise DataError(
            f"need at least 3 distinct color frames, found {len(train) + len(val)} "
            f"({dup} near-duplicates, {gray} gray and {len(unreadable)} unreadable frames skipped)"
        )
    return Frames(train, val, dup, gray, per_source, unreadable)
