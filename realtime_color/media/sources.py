"""Where frames come from: one URI parser for every command, one class per kind of source.

    0, 1, --camera N        a local camera (V4L2 through OpenCV; MJPG when offered; 1-frame buffer)
    /dev/video0             the same, by device path
    rtsp://host/path        RTSP over TCP (PyAV)
    http(s)://..., udp://.. network streams (PyAV; MJPEG over HTTP through OpenCV with --opencv)
    clip.mp4                a file, paced at its own frame rate so it behaves like a camera
                            (--no-pace runs it flat out; --loop repeats it)
    photos/ or 'img/*.png'  pictures shown one after the other at --fps
    synth://?fps=30&size=640x360
                            generated frames (for trying things out and for tests); die_after=N
                            and down=SECONDS make it drop out and come back like a flaky camera

``read()`` returns a status (a frame, nothing yet, the end, or an error) rather than raising;
``LiveSource`` (media/live.py) turns that into a stream of Pictures. One rule for failures: a camera or stream
that fails is reopened with backoff; a file (or a folder of pictures) is not a camera, so a frame
it cannot decode is skipped with a warning and its end is the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np

from ..errors import RtcolorError
from .images import IMAGE_SUFFIXES, ImageReadError, expand_inputs, read_image

SOURCE_HELP = (
    "Source: a camera index (0) or /dev/videoN, rtsp://, http(s)://, udp://, a video file, a folder "
    "or glob of pictures, or synth:// (generated frames)."
)
CLOCK = Fraction(1, 90000)  # live pictures are stamped with the capture clock in these units
NETWORK_KINDS = ("rtsp", "http", "udp")  # may come up after us, and may go away and come back
STALL_SECONDS = 5.0  # a network stream that sends nothing for this long is lost (then reopened)


class Status(Enum):
    FRAME = "frame"
    EMPTY = "empty"  # nothing new yet (timeout): try again
    END = "end"  # the source has no more frames (a file without --loop)
    ERROR = "error"  # the source failed; reopen it (a live source) or stop (a file)


class SourceError(RtcolorError):
    """A source that cannot be opened, with the reason and the fix."""


@dataclass
class SourceSpec:
    kind: str  # camera, rtsp, http, udp, file, images, synth
    uri: str
    options: dict = field(default_factory=dict)


def parse_source(uri: str) -> SourceSpec:
    """Turn what the user typed into a SourceSpec (no I/O beyond looking at the file system)."""
    text = str(uri).strip()
    if text.isdigit():
        return SourceSpec("camera", text, {"index": int(text)})
    if text.startswith("/dev/video"):
        return SourceSpec("camera", text, {"index": text})
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        return SourceSpec("rtsp", text)
    if scheme in ("http", "https"):
        return SourceSpec("http", text)
    if scheme in ("udp", "rtp", "srt", "tcp"):
        return SourceSpec("udp", text)
    if scheme == "synth":
        q = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return SourceSpec("synth", text, q)
    path = Path(text)
    if path.is_dir() or any(c in text for c in "*?["):
        return SourceSpec("images", text)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return SourceSpec("images", text)
    if not path.exists():
        raise SourceError(f"source {text!r}: no such file, and not a camera index, device or URL")
    return SourceSpec("file", text)


_SYNTH_DOWN_UNTIL: dict[str, float] = {}  # a dead fake camera refuses to reopen until then


class SynthSource:
    """Generated frames at a set rate; can die after N frames and stay away ``down`` seconds."""

    def __init__(self, spec: SourceSpec):
        from .synth import SceneClip

        if time.monotonic() < _SYNTH_DOWN_UNTIL.get(spec.uri, 0.0):
            raise SourceError(f"{spec.uri}: not answering")
        self.uri = spec.uri
        o = spec.options
        try:
            w, h = (int(v) for v in o.get("size", "640x360").lower().split("x"))
            self.fps = float(o.get("fps", 30))
            self.die_after = int(o.get("die_after", 0))
            self.down = float(o.get("down", 1.0))
            seed = int(o.get("seed", 0))
        except ValueError:
            raise SourceError(
                f"{spec.uri}: bad option; use e.g. synth://?fps=30&size=640x360&gray=1&die_after=0&down=1"
            ) from None
        self.gray = o.get("gray", "1") == "1"  # an IR camera: one channel
        self.clip = SceneClip(h, w, self.fps, seed=seed)
        self.count = 0
        self.next_time = time.monotonic()

    def read(self, timeout: float = 1.0) -> tuple[Status, np.ndarray | None]:
        if self.die_after and self.count >= self.die_after:
            _SYNTH_DOWN_UNTIL[self.uri] = time.monotonic() + self.down
            return Status.ERROR, None
        wait = self.next_time - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.next_time = max(self.next_time + 1.0 / self.fps, time.monotonic() - 1.0 / self.fps)
        import cv2

        rgb = self.clip.frame(self.count)
        self.count += 1
        code = cv2.COLOR_RGB2GRAY if self.gray else cv2.COLOR_RGB2BGR
        return Status.FRAME, cv2.cvtColor(rgb, code)

    def close(self) -> None:
        pass


class CvSource:
    """A camera (or an MJPEG URL) through OpenCV: V4L2, MJPG fourcc where offered, 1-frame buffer."""

    def __init__(self, spec: SourceSpec):
        import cv2

        target = spec.options.get("index", spec.uri)
        backend = cv2.CAP_V4L2 if spec.kind == "camera" and hasattr(cv2, "CAP_V4L2") else cv2.CAP_ANY
        self.cap = cv2.VideoCapture(target, backend)
        if not self.cap.isOpened():
            raise SourceError(
                f"cannot open {spec.uri}: no such camera or stream (check the index with `v4l2-ctl --list-devices`)"
            )
        if spec.kind == "camera":
            self.cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))  # ignored when not offered
            self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # a backlog in the driver is latency
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0

    def read(self, timeout: float = 1.0) -> tuple[Status, np.ndarray | None]:
        ok, frame = self.cap.read()
        return (Status.FRAME, frame) if ok else (Status.ERROR, None)

    def close(self) -> None:
        self.cap.release()


class AvSource:
    """A network stream or file through PyAV; files are paced at their own timestamps."""

    def __init__(self, spec: SourceSpec, pace: bool = True, loop: bool = False):
        import av

        self.spec, self.pace, self.loop = spec, pace and spec.kind == "file", loop and spec.kind == "file"
        options = {"timeout": "5000000"}  # microseconds: a dead stream is an error, not a hang
        if spec.kind == "rtsp":
            options = {"rtsp_transport": "tcp", "timeout": "5000000"}
        elif spec.kind == "udp":
            options = {"timeout": "5000000", "overrun_nonfatal": "1", "fifo_size": "500000"}
        elif spec.kind == "file":
            options = {}
        try:
            # (open, read) timeouts: a server that accepts and then says nothing is a stall, not a hang.
            # Half the stall time for reads: the first timed-out read ends the demuxer, which hands
            # back the frames its decoder still held, and only the next one fails.
            timeout = (10.0, STALL_SECONDS / 2) if spec.kind != "file" else None
            self.container = av.open(spec.uri, options=options, timeout=timeout)
        except (av.error.FFmpegError, OSError) as e:
            raise SourceError(f"cannot open {spec.uri}: {e}") from None
        if not self.container.streams.video:
            raise SourceError(f"{spec.uri}: has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.fps = float(self.stream.average_rate or 30)
        self.problems: list[str] = []  # frames of a file that could not be decoded (skipped)
        self.last_error: str | None = None  # why the last read failed (a stream's outage reason)
        self.rotation = 0
        self._frames = self._decode_file() if spec.kind == "file" else self.container.decode(self.stream)
        self._t0: float | None = None
        self._offset = 0.0

    def _decode_file(self):
        """A file's frames, packet by packet: a damaged packet is skipped and noted in ``problems``
        (a network stream's decode error ends ``read`` with ERROR instead, and is reopened)."""
        import av

        demux = self.container.demux(self.stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.error.FFmpegError as e:
                self._problem(f"reading stopped early: {e}")
                packet = None
            try:
                # ``None`` (after a demux error) flushes the frames the decoder still holds
                yield from (packet.decode() if packet is not None else self.stream.codec_context.decode(None))
            except av.error.FFmpegError as e:
                self._problem(f"skipped an undecodable packet at pts {getattr(packet, 'pts', None)}: {e}")
            if packet is None:
                return

    def _problem(self, text: str) -> None:
        if text not in self.problems:  # --loop meets the same damage on every pass: noted once
            self.problems.append(text)

    def read(self, timeout: float = 1.0) -> tuple[Status, np.ndarray | None]:
        import av

        try:
            frame = next(self._frames)
        except StopIteration:
            if self.spec.kind != "file":  # a camera does not end: the other side went away
                self.last_error = "the stream ended"
                return Status.ERROR, None
            if not self.loop:
                return Status.END, None
            self.container.seek(0)
            self._frames = self._decode_file()
            self._offset = time.monotonic() - (self._t0 or time.monotonic())
            self._t0 = None
            return Status.EMPTY, None
        except (av.error.FFmpegError, OSError) as e:
            self.last_error = str(e) or e.__class__.__name__
            return Status.ERROR, None
        self.rotation = int(getattr(frame, "rotation", 0) or 0)
        if self.pace and frame.pts is not None:
            t = float(frame.pts * frame.time_base)
            if self._t0 is None:
                self._t0 = time.monotonic() - t
            wait = self._t0 + t - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        gray = frame.to_ndarray(format="gray")  # the luma only: that is all the network uses
        return Status.FRAME, gray

    def close(self) -> None:
        self.container.close()


class ImageSource:
    """Pictures from a folder or glob, one after the other at ``fps``."""

    def __init__(self, spec: SourceSpec, fps: float = 5.0, loop: bool = False):
        self.paths, _ = expand_inputs([spec.uri])
        if not self.paths:
            raise SourceError(f"{spec.uri}: no pictures found")
        self.fps, self.loop, self.i = fps, loop, 0
        self.next_time = time.monotonic()
        self.problems: list[str] = []  # pictures that could not be read (skipped, as a file skips a bad frame)

    def read(self, timeout: float = 1.0) -> tuple[Status, np.ndarray | None]:
        if self.i >= len(self.paths):
            if not self.loop:
                return Status.END, None
            self.i = 0
        wait = self.next_time - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.next_time = time.monotonic() + 1.0 / self.fps
        try:
            img = read_image(self.paths[self.i])
        except ImageReadError as e:
            if str(e) not in self.problems:
                self.problems.append(str(e))
            self.i += 1
            return Status.EMPTY, None
        self.i += 1
        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        return Status.FRAME, img[..., 2::-1] if img.ndim == 3 else img  # RGB -> BGR

    def close(self) -> None:
        pass


def open_raw(spec: SourceSpec, pace: bool = True, loop: bool = False, fps: float = 5.0, opencv: bool = False):
    """The source object for a spec (raises SourceError when it cannot be opened)."""
    if spec.kind == "synth":
        return SynthSource(spec)
    if spec.kind == "camera" or (spec.kind == "http" and opencv):
        return CvSource(spec)
    if spec.kind == "images":
        return ImageSource(spec, fps=fps, loop=loop)
    return AvSource(spec, pace=pace, loop=loop)
