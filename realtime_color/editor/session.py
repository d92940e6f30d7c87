"""The hints being edited, and what the page shows with them: previews and suggested colors.

The page sends the whole hint list on every change (it keeps undo and redo itself); the session
checks it with the hints file's own parser, writes the file atomically, and colorizes the frame
the page asks for with the hints that hold on it:

* a picture: every hint;
* a live view: its frame-less hints (for ``stream --hints``), each held off where the scene under
  it no longer looks as it did (``carry.gate``, the gate ``stream`` applies);
* a video frame: the frame-less hints (gated against the first frame) and those placed on a frame
  of the same shot, followed through it (``carry.ShotCarrier``); hints of other shots are left
  out, as ``colorize`` leaves them out.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from ..errors import RtcolorError
from ..guidance.hints import Hint, HintsError, HintSet, load_hints, parse_hints, save_hints
from .carry import Placed, ShotCarrier, gate
from .inputs import InputError

JPEG_QUALITY = 90
SUGGESTIONS = 6
KEEP_RESULTS = 8  # colorized previews kept, by (frame, hints version)
# Offered when the model has no per-pixel color distribution to suggest from: everyday colors
# (sky, foliage, grass, skin, brick, wood, water, a red coat), shown at the pixel's own lightness,
# since only a hint's chroma is used.
PALETTE = ("#5b8fd6", "#4f7d3a", "#7fa84a", "#d9a384", "#a5452f", "#8a6a45", "#3f7f8f", "#b3262e")


class EditError(InputError):
    """A request the session refuses (a frame outside the video, a hint list that does not parse)."""


def takes_hints(colorizer) -> bool:
    """Whether this colorizer's model follows hints (a model trained without hint inputs refuses them)."""
    try:
        takes = "hints" in inspect.signature(colorizer.colorize).parameters
    except (TypeError, ValueError):
        return False
    backend = getattr(colorizer, "backend", None)
    return takes and bool(getattr(backend, "takes_hints", True))


def relit(hex_color: str, lightness: float) -> str:
    """``hex_color``'s chroma at Lab lightness ``lightness``: how the hint will look at that pixel."""
    from ..color import lab_to_rgb_in_gamut, rgb_to_lab_np

    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], np.float32) / 255
    lab = rgb_to_lab_np(rgb)
    out = lab_to_rgb_in_gamut(np.full((1, 1), lightness, np.float32), lab[1:].reshape(1, 1, 2).astype(np.float32))
    return "#" + "".join(f"{int(round(float(c) * 255)):02x}" for c in np.clip(out[0, 0], 0, 1))


def jpeg(rgb: np.ndarray) -> bytes:
    bgr = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise EditError("the preview could not be encoded")
    return buf.tobytes()


class Session:
    """One input, one hints file, one colorizer (used by one request at a time)."""

    def __init__(self, media, colorizer, hints_path: Path, temporal=None, log=lambda m: None):
        from ..video.temporal import TemporalConfig

        self.media, self.colorizer, self.path, self.log = media, colorizer, Path(hints_path), log
        self.temporal = temporal or TemporalConfig()  # the shots and the colorize job use the same settings
        self.lock = threading.Lock()  # a backend runs one call at a time; requests queue here
        self.hints = self._load()
        self.rev = 0
        self.recent: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.hints_used = takes_hints(colorizer)  # False: a model without hint inputs (previews ignore them)
        self.suggest_from_model = hasattr(colorizer, "suggest")  # until the backend says it has no distribution
        self.carrier = ShotCarrier(media) if media.kind == "video" else None

    def _load(self) -> HintSet:
        if not self.path.exists():
            return HintSet()  # written by ``create`` once the editor is up
        hints = load_hints(self.path)
        self._check(hints, str(self.path))
        self.log(f"{self.path}: {len(hints)} hints loaded")
        return hints

    def create(self) -> None:
        """Write an empty hints file when there is none, so the CLI can read FILE at once."""
        if not self.path.exists():
            save_hints(self.path, HintSet())
            self.log(f"{self.path}: created (no hints yet)")

    def close(self, seconds: float = 60.0) -> None:
        """Wait for the colorizer call in flight, and let no other start (the editor is stopping)."""
        self.lock.acquire(timeout=seconds)

    def _check(self, hints: HintSet, where: str) -> None:
        """Refuse what the command that reads FILE would refuse for this input (one line, named)."""
        kind = self.media.kind
        if kind == "video":  # the last frame shows until one frame's time after it starts
            end = self.media.times[-1] + (1.0 / self.media.fps if self.media.fps else 0.0)
            hints.check_frames(self.media.frames, end, where)
            return
        for i, h in enumerate(hints.hints):
            if h.frameless or (kind == "picture" and h.frame in (None, 0) and h.time in (None, 0)):
                continue  # a picture is frame 0, as `image --hints` reads it
            at = f"frame {h.frame}" if h.frame is not None else f"time {h.time:g} s"
            if kind == "picture":
                raise HintsError(f"{where}: hint {i}: {at}: a picture has one frame (frame and time are for video)")
            raise HintsError(f"{where}: hint {i}: {at}: a live view takes frame-less hints only (as stream --hints)")

    def set_hints(self, body: bytes) -> int:
        """The page's whole hint list (a hints document): checked, then written atomically."""
        hints = parse_hints(body, "the page's hints")
        self._check(hints, "the page's hints")
        hints = HintSet(hints.hints, {**self.hints.extra, **hints.extra})
        with self.lock:
            save_hints(self.path, hints)
            self.hints, self.rev = hints, self.rev + 1
            return self.rev

    def placed(self, index: int) -> list[Placed]:
        """Each hint that holds on frame ``index``, where it is there and whether the gate lets it apply."""
        hints, media = self.hints.hints, self.media
        if media.kind == "picture":
            return [Placed(i, h) for i, h in enumerate(hints)]
        if media.kind == "live":
            return gate(list(enumerate(hints)), media.view, media.latest_small)
        return self.carrier.placed(hints, self.rev, index)

    def active(self, index: int) -> tuple[Hint, ...]:
        return tuple(p.hint for p in self.placed(index) if p.held)

    def _frame(self, index: int) -> np.ndarray:
        if not 0 <= index < self.media.frames:
            raise EditError(f"frame {index} is outside the input (0 to {self.media.frames - 1})")
        return self.media.frame(index)

    def colorized(self, index: int) -> np.ndarray:
        """Frame ``index`` colorized with the hints that hold on it (the last few kept: a reload,
        the suggestions and the gray/color toggle ask for the same picture again)."""
        frame = self._frame(index)
        with self.lock:
            key = (index, self.rev, getattr(self.media, "seq", 0))  # a live view's picture changes by itself
            if key not in self.recent:
                hints = self.active(index) if self.hints_used else ()
                out = self.colorizer.colorize(frame, hints=hints) if hints else self.colorizer.colorize(frame)
                self.recent[key] = out
                while len(self.recent) > KEEP_RESULTS:
                    self.recent.popitem(last=False)
            return self.recent[key]

    def gray(self, index: int) -> np.ndarray:
        from ..runtime.colorizer import gray_rgb

        return gray_rgb(self._frame(index), np.uint8)

    def suggest(self, index: int, x: float, y: float, k: int = SUGGESTIONS) -> dict:
        """Colors for a hint at (x, y) (fractions): the model's likeliest there, or everyday ones."""
        frame = self._frame(index)
        h, w = frame.shape[:2]
        px, py = min(w - 1, int(x * w)), min(h - 1, int(y * h))
        with self.lock:
            if self.suggest_from_model:
                # The distribution given the other hints (not one already at this very point).
                hints = tuple(hh for hh in self.active(index) if abs(hh.x - x) > 1e-6 or abs(hh.y - y) > 1e-6)
                try:
                    found = self.colorizer.suggest(frame, x, y, hints=hints if self.hints_used else (), k=k)
                    return {"from": "model", "colors": [{"color": c, "p": round(float(p), 4)} for c, p in found]}
                except (RtcolorError, ValueError) as e:  # a model or runtime without the binned head's output
                    self.log(f"suggested colors: {e}; offering everyday colors instead")
                    self.suggest_from_model = False
        out = self.colorized(index)  # what the page shows there now
        from ..runtime.colorizer import frame_to_L

        lightness = float(frame_to_L(frame[py : py + 1, px : px + 1])[0, 0])
        here = "#" + "".join(f"{int(c):02x}" for c in out[py, px, :3])
        colors = [{"color": here, "p": None}] + [{"color": relit(c, lightness), "p": None} for c in PALETTE]
        return {"from": "palette", "colors": colors[: k + 2]}

    def state(self) -> dict:
        m = self.media
        return {
            "kind": m.kind,
            "name": m.uri if m.kind == "live" else m.path.name,
            "width": m.width,
            "height": m.height,
            "frames": m.frames,
            "fps": m.fps,
            "cuts": list(m.cuts),
            "hints": [h.to_json() for h in self.hints.hints],
            "hints_file": str(self.path),
            "rev": self.rev,
            "hints_used": self.hints_used,
            "suggest_from": "model" if self.suggest_from_model else "palette",
            "live_state": getattr(m, "state", None),
        }
