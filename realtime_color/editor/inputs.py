"""What the editor shows: a picture, a video (any frame, and its shots), or a live source's newest view.

Every input hands out frames as 8-bit RGB or gray arrays no larger than ``PREVIEW_MAX`` on the
long side: the page shows the picture at screen size, and a hint is a fraction of the picture, so
it holds at the source's full resolution when the real job runs. A video's shots come from the
pipeline's own cut detector (the first pass ``--color-frames`` uses), with the same settings, so
a hint carried "through its shot" here stops at the cut where ``colorize`` stops it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from ..errors import RtcolorError

PREVIEW_MAX = 1280  # long side (pixels) of the frames the page shows: 720p is shown as it is
CACHE_FRAMES = 24  # decoded preview frames kept, so scrubbing back and forth does not decode again
# Small frames (the network's L, 8 bits) kept from the first pass, to follow hints through a shot
# as colorize does: 37 kB each at 144x256, so this many is about 150 MB. Longer videos keep the
# first ones; hints on later shots are previewed where they were put.
MAX_SMALL_FRAMES = 4000


class InputError(RtcolorError):
    """An input the editor cannot open (an unreadable picture, a damaged video, a dead camera)."""


def to_preview(rgb: np.ndarray) -> np.ndarray:
    """An RGB or gray frame (8 or 16 bits) -> 8 bits, the long side at most PREVIEW_MAX, area-averaged."""
    if rgb.dtype == np.uint16:
        rgb = (rgb >> 8).astype(np.uint8)
    if rgb.ndim == 3 and rgb.shape[2] == 4:
        rgb = rgb[:, :, :3]
    h, w = rgb.shape[:2]
    scale = PREVIEW_MAX / max(h, w)
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


class PictureInput:
    """One still picture."""

    kind = "picture"

    def __init__(self, path: Path):
        from ..media.images import ImageReadError
        from ..media.sources import read_still

        self.path = Path(path)
        try:
            pic = read_still(self.path)
        except ImageReadError as e:
            raise InputError(str(e)) from None
        self.width, self.height = pic.pixels.shape[1], pic.pixels.shape[0]
        preview = to_preview(pic.pixels)
        if (
            preview.ndim == 3
            and not (preview[..., 0] != preview[..., 1]).any()
            and not (preview[..., 1] != preview[..., 2]).any()
        ):  # a gray picture stored as RGB: one channel gives the same L, through a table (fast)
            preview = np.ascontiguousarray(preview[..., 0])
        self.preview = preview
        self.frames, self.fps, self.cuts, self.times = 1, 0.0, [0], [0.0]

    def frame(self, index: int = 0) -> np.ndarray:
        return self.preview

    def shot(self, index: int) -> int:
        return 0

    def small(self, index: int) -> np.ndarray | None:
        return None  # a picture's hints always apply: nothing to gate or track

    def close(self) -> None:
        pass


def _pack(lum: np.ndarray) -> np.ndarray:
    return np.clip(lum * 2.55, 0, 255).astype(np.uint8)


def _unpack(u8: np.ndarray) -> np.ndarray:
    # Half a step up, so that the tracker's own 8-bit conversion (L * 2.55, truncated) gives u8 back.
    return (u8.astype(np.float32) + 0.5) / 2.55


class VideoInput:
    """A video file: its shots found once, any frame decoded on demand (seeking to the keyframe before it)."""

    kind = "video"

    def __init__(self, path: Path, size: int, temporal, log=lambda m: None):
        import av

        from ..guidance.colored_frames import scan

        self.path = Path(path)
        log(f"{self.path}: finding its shots (the cut detector colorize uses)")
        self._small: list[np.ndarray] = []

        def keep(index: int, seconds: float, lum: np.ndarray, cut: bool) -> None:
            if index < MAX_SMALL_FRAMES:
                self._small.append(_pack(lum))

        try:
            shots = scan(self.path, size, temporal, on_frame=keep)
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise InputError(f"{self.path}: cannot read it as a video ({e})") from None
        if not shots.times:
            raise InputError(f"{self.path}: has no video frames")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.cuts, self.times, self._shots = shots.cuts, shots.times, shots
        self.frames = len(self.times)
        self.fps = float(self.stream.average_rate or 0) or (self.frames / max(1e-6, self.times[-1] or 1))
        self.width, self.height = self.stream.codec_context.width, self.stream.codec_context.height
        self.lock = threading.Lock()
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._decoder = None  # the decoding generator after the last frame read, and that frame's index
        self._at = -1

    def shot(self, index: int) -> int:
        return self._shots.shot(index)

    def index_at(self, seconds: float) -> int:
        return self._shots.index_at(seconds)

    def small(self, index: int) -> np.ndarray | None:
        """The small L the network and the hint tracker see on frame ``index`` (None if not kept)."""
        return _unpack(self._small[index]) if 0 <= index < len(self._small) else None

    def frame(self, index: int) -> np.ndarray:
        if not 0 <= index < self.frames:
            raise InputError(f"frame {index} is outside the video (0 to {self.frames - 1})")
        with self.lock:
            if index in self.cache:
                self.cache.move_to_end(index)
                return self.cache[index]
            rgb = self._decode(index)
            self.cache[index] = rgb
            while len(self.cache) > CACHE_FRAMES:
                self.cache.popitem(last=False)
            return rgb

    def _decode(self, index: int) -> np.ndarray:
        import av

        try:
            if self._decoder is None or not self._at < index <= self._at + 30:  # near ahead: keep decoding
                self._seek(index)
            for frame in self._decoder:
                self._at = self._position(frame)
                if self._at >= index:  # the luma, as the pipeline colors it (its L comes from Y alone)
                    y = frame.to_ndarray(format="gray")
                    if frame.color_range != 2:  # video levels (16-235) -> full range, for the L table
                        y = cv2.convertScaleAbs(y, alpha=255 / 219, beta=-16 * 255 / 219)
                    return to_preview(y)
        except (av.error.FFmpegError, StopIteration) as e:
            raise InputError(f"{self.path}: frame {index} cannot be decoded ({e})") from None
        self._decoder = None
        raise InputError(f"{self.path}: frame {index} cannot be decoded (the video ended before it)")

    def _seek(self, index: int) -> None:
        """Seek to the keyframe at or before ``index``; from the start when its time is unknown."""
        tb = self.stream.time_base
        target = self.times[index]
        if index == 0 or not tb:
            self.container.seek(0, stream=self.stream)
        else:  # half a frame early, so rounding never lands after the frame asked for
            self.container.seek(int(max(0.0, target - 0.5 / max(self.fps, 1.0)) / tb), stream=self.stream)
        self._decoder = self.container.decode(self.stream)
        self._at = -1

    def _position(self, frame) -> int:
        """The index of a decoded frame, from its time (the scan recorded every frame's)."""
        if frame.time is None:
            return self._at + 1
        return self._shots.index_at(float(frame.time))

    def close(self) -> None:
        with self.lock:
            self.container.close()


class LiveInput:
    """A camera or stream: a reader thread keeps only the newest picture (a live view never lags)."""

    kind = "live"

    def __init__(self, uri: str, size: int, log=lambda m: None, first_frame_seconds: float = 10.0):
        from ..media.frames import Policy, SourceError, Status
        from ..media.sources import open_source

        self.uri, self.size = uri, size
        self.view: np.ndarray | None = None  # the first picture's small L: frame-less hints are gated against it
        self.latest_small: np.ndarray | None = None
        try:
            self.source = open_source(uri, Policy.LIVE, log=log)
        except (SourceError, OSError, ValueError) as e:
            raise InputError(f"live source {uri}: cannot open it ({e})") from None
        self._status = Status
        self.latest: np.ndarray | None = None
        self.seq = 0
        self.frames, self.fps, self.cuts, self.times = 1, 0.0, [0], [0.0]
        self.width = self.height = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._read, name="rtcolor-edit-live", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + first_frame_seconds
        while self.latest is None and time.monotonic() < deadline and self.thread.is_alive():
            time.sleep(0.05)
        if self.latest is None:
            reason = getattr(getattr(self.source, "outages", None), "reason", "") or "no frame"
            self.close()
            raise InputError(f"live source {uri}: no picture within {first_frame_seconds:g} s ({reason})")

    def _read(self) -> None:
        while not self.stopping.is_set():
            status, pic, _ = self.source.read(0.5)
            if status is self._status.FRAME:
                y = pic.y if pic.full_range else cv2.convertScaleAbs(pic.y, alpha=255 / 219, beta=-16 * 255 / 219)
                from ..runtime.colorizer import inference_shape, luma_to_small_L

                self.height, self.width = y.shape
                small = luma_to_small_L(y, True, inference_shape(*y.shape, self.size))
                if self.view is None:
                    self.view = small
                self.latest_small, self.latest, self.seq = small, to_preview(y), self.seq + 1
            elif status is self._status.END:
                return

    @property
    def state(self) -> str:
        outages = getattr(self.source, "outages", None)
        return outages.state.value if outages is not None else "live"

    def frame(self, index: int = 0) -> np.ndarray:
        if self.latest is None:
            raise InputError(f"live source {self.uri}: no picture yet")
        return self.latest

    def shot(self, index: int) -> int:
        return 0

    def small(self, index: int) -> np.ndarray | None:
        """0: the first picture (the view hints were placed on); else the newest."""
        return self.view if index == 0 else self.latest_small

    def close(self) -> None:
        self.stopping.set()
        self.source.stop()
        self.thread.join(timeout=3.0)
        self.source.close()


def open_input(text: str, size: int, temporal, log=lambda m: None):
    """What the user typed as INPUT -> PictureInput, VideoInput or LiveInput."""
    from ..media.frames import SourceError
    from ..media.images import IMAGE_SUFFIXES
    from ..media.sources import parse_source

    try:
        spec = parse_source(text)
    except SourceError as e:
        raise InputError(str(e)) from None
    if spec.kind == "images":
        path = Path(text)
        if path.is_dir() or path.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(f"{text}: the editor takes one picture, video or live source, not a folder or glob")
        if not path.is_file():
            raise InputError(f"{text}: no such picture")
        return PictureInput(path)
    if spec.kind == "file":
        return VideoInput(Path(text), size, temporal, log)
    return LiveInput(text, size, log)
