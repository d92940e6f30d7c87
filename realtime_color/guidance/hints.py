"""Color hints: what the user knows about a few points of the picture (``--hints FILE``).

The file is JSON, written by hand, by ``rtcolor edit`` or by a held-out check::

    {"hints": [
      {"x": 0.42, "y": 0.61, "color": "#7a9b3c"},
      {"x": 0.10, "y": 0.20, "color": "#3b6fb0", "size": 9, "frame": 120}
    ]}

* ``x``, ``y``: fractions (0-1) of the picture's width and height from its top-left corner, so a
  hint placed on a preview holds at any resolution.
* ``color``: sRGB ``#rrggbb``; only its chroma (Lab a,b) is used: the picture keeps its own L.
* ``size`` (optional): the side of the hint's square patch in source pixels (1-``MAX_SIZE``).
* ``frame`` (index from 0) or ``time`` (seconds), for video: the hint belongs to that frame's shot.
  A hint with neither holds for every frame (a fixed camera).

Other top-level keys (a version, the picture's size, the source) are kept and ignored; unknown
keys inside a hint are refused, so a typo (``"colour"``) is not silently dropped. Every refusal
names the file, the entry and the field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NotFoundError, RtcolorError

FORMAT_VERSION = 1
MAX_FILE_BYTES = 4 << 20  # a few thousand hints fit in well under this; a bigger file is not a hints file
MAX_HINTS = 10_000
MAX_SIZE = 64  # pixels; a larger patch is a fill, not a hint
DEFAULT_SIZE = 3
HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
KEYS = {"x", "y", "color", "size", "frame", "time"}


class HintsError(RtcolorError, ValueError):
    """A hints file that cannot be used, with the file, the entry and the field named."""


@dataclass(frozen=True)
class Hint:
    """One hint: a point (fractions of the picture), its color, and where in a video it belongs."""

    x: float
    y: float
    color: str  # "#rrggbb"
    size: int = DEFAULT_SIZE
    frame: int | None = None
    time: float | None = None

    @property
    def frameless(self) -> bool:
        """Holds for every frame (a fixed camera's view), not for one shot."""
        return self.frame is None and self.time is None

    @property
    def rgb(self) -> tuple[int, int, int]:
        return tuple(int(self.color[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]

    @property
    def ab(self) -> tuple[float, float]:
        """The color's Lab chroma (a, b), in Lab units."""
        from ..color import rgb_to_lab_np

        lab = rgb_to_lab_np(np.array(self.rgb) / 255.0)
        return float(lab[1]), float(lab[2])

    def to_json(self) -> dict:
        d: dict = {"x": round(self.x, 6), "y": round(self.y, 6), "color": self.color.lower()}
        if self.size != DEFAULT_SIZE:
            d["size"] = self.size
        if self.frame is not None:
            d["frame"] = self.frame
        if self.time is not None:
            d["time"] = self.time
        return d


@dataclass(frozen=True)
class HintSet:
    """The hints of one file, and the top-level keys it carried beside them."""

    hints: tuple[Hint, ...] = ()
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.hints)

    def frameless(self) -> tuple[Hint, ...]:
        return tuple(h for h in self.hints if h.frameless)

    def check_frames(self, frames: int | None, duration: float | None, where: str) -> None:
        """Refuse a hint placed past the end of a video of ``frames`` frames / ``duration`` seconds."""
        for i, h in enumerate(self.hints):
            if h.frame is not None and frames is not None and h.frame >= frames:
                raise HintsError(f"{where}: hint {i}: frame {h.frame} is past the end of the video ({frames} frames)")
            if h.time is not None and duration is not None and h.time > duration:
                raise HintsError(f"{where}: hint {i}: time {h.time} s is past the end of the video ({duration:.2f} s)")


def _number(value: object, where: str, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HintsError(f"{where}: {name} {value!r} is not a number")
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise HintsError(f"{where}: {name} {value!r} must be between {lo:g} and {hi:g}")
    return v


def _integer(value: object, where: str, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise HintsError(f"{where}: {name} {value!r} must be a whole number from {lo} to {hi}")
    return int(value)


def parse_hint(entry: object, where: str) -> Hint:
    """One entry of the ``hints`` list, checked field by field."""
    if not isinstance(entry, dict):
        raise HintsError(f"{where}: not an object with x, y and color")
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise HintsError(f"{where}: unknown field {unknown[0]!r} (a hint has {', '.join(sorted(KEYS))})")
    for key in ("x", "y", "color"):
        if key not in entry:
            raise HintsError(f"{where}: {key} is missing")
    color = entry["color"]
    if not isinstance(color, str) or not HEX.match(color):
        raise HintsError(f"{where}: color {color!r} is not an sRGB hex color like '#7a9b3c'")
    if "frame" in entry and "time" in entry and entry["frame"] is not None and entry["time"] is not None:
        raise HintsError(f"{where}: give frame or time, not both")
    frame = entry.get("frame")
    time = entry.get("time")
    return Hint(
        x=_number(entry["x"], where, "x", 0.0, 1.0),
        y=_number(entry["y"], where, "y", 0.0, 1.0),
        color=color.lower(),
        size=_integer(entry.get("size", DEFAULT_SIZE), where, "size", 1, MAX_SIZE),
        frame=None if frame is None else _integer(frame, where, "frame", 0, 10**9),
        time=None if time is None else _number(time, where, "time", 0.0, 1e7),
    )


def parse_hints(text: str | bytes, where: str) -> HintSet:
    """A hints document (the file's text); ``where`` names it in every error."""
    if len(text) > MAX_FILE_BYTES:
        raise HintsError(f"{where}: {len(text)} bytes is too large for a hints file (at most {MAX_FILE_BYTES})")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise HintsError(f"{where}: not JSON ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(doc, dict) or "hints" not in doc:
        raise HintsError(f'{where}: expected an object with a "hints" list, like {{"hints": []}}')
    items = doc["hints"]
    if not isinstance(items, list):
        raise HintsError(f"{where}: hints must be a list")
    if len(items) > MAX_HINTS:
        raise HintsError(f"{where}: {len(items)} hints; at most {MAX_HINTS}")
    hints = tuple(parse_hint(e, f"{where}: hint {i}") for i, e in enumerate(items))
    return HintSet(hints, {k: v for k, v in doc.items() if k != "hints"})


def load_hints(path: str | Path) -> HintSet:
    """Read and check a hints file; every problem is a ``HintsError`` naming the file."""
    path = Path(path)
    if path.is_dir():
        raise HintsError(f"{path}: is a folder, not a hints file (a folder of <stem>.json files goes with image)")
    if not path.exists():
        raise NotFoundError(f"{path}: no such hints file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise HintsError(f"{path}: {size} bytes is too large for a hints file (at most {MAX_FILE_BYTES})")
        data = path.read_bytes()
    except OSError as e:
        raise HintsError(f"{path}: cannot read ({e.strerror or e})") from None
    if not data.strip():
        raise HintsError(f'{path}: empty; an empty hints file is {{"hints": []}}')
    return parse_hints(data, str(path))


def dump_hints(hints: HintSet) -> str:
    doc = {"version": FORMAT_VERSION, **{k: v for k, v in hints.extra.items() if k != "version"}}
    doc["hints"] = [h.to_json() for h in hints.hints]
    return json.dumps(doc, indent=1) + "\n"


def save_hints(path: str | Path, hints: HintSet) -> Path:
    """Write atomically (a temporary name, then a rename), so a reader never sees half a file."""
    from ..media.images import atomic_write

    return atomic_write(path, dump_hints(hints))


def rasterize(hints: tuple[Hint, ...] | list[Hint], height: int, width: int, source_hw: tuple[int, int] | None = None):
    """The network's hint channels at ``height`` x ``width``: ab (2, H, W, Lab units) and mask (1, H, W).

    A hint's patch is ``size`` source pixels wide (``source_hw`` is the source picture's size;
    without it the patch is measured at this size), at least one pixel here. Later hints
    overwrite earlier ones where patches overlap, as the editor draws them.
    """
    ab = np.zeros((2, height, width), np.float32)
    mask = np.zeros((1, height, width), np.float32)
    scale = 1.0 if source_hw is None else height / max(1, source_hw[0])
    for h in hints:
        half = max(1.0, h.size * scale) / 2
        cx, cy = h.x * (width - 1), h.y * (height - 1)
        x0, x1 = int(round(cx - half + 0.5)), int(round(cx + half + 0.5))
        y0, y1 = int(round(cy - half + 0.5)), int(round(cy + half + 0.5))
        x0, y0 = max(0, min(x0, width - 1)), max(0, min(y0, height - 1))
        x1, y1 = max(x0 + 1, min(x1, width)), max(y0 + 1, min(y1, height))
        a, b = h.ab
        ab[0, y0:y1, x0:x1], ab[1, y0:y1, x0:x1] = a, b
        mask[0, y0:y1, x0:x1] = 1.0
    return ab, mask
