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

Every command opens its input here: ``open_source(uri, policy)`` parses what the user typed once
(``parse_source``), picks the class from ``SOURCES`` (one class, one decoder, per kind) and, for the
live policy, wraps it in ``LiveSource``, which reopens a failed camera or stream with backoff and
stamps pictures with the capture clock. ``read()`` returns a ``Read``: a status (a frame, a packet
to pass along, nothing yet, a skipped picture, the end, an error) rather than raising. One rule
for failures: a camera or stream that fails is reopened; a file (or a folder of pictures) is not a
camera, so a frame it cannot decode is skipped with a warning and its end is the end.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np

from .decode import FileSource, StreamSource
from .frames import Picture, Policy, Read, Source, SourceError, Status, picture_from_bgr, pictures
from .images import IMAGE_SUFFIXES, ImageReadError, expand_inputs, read_picture
from .outages import FIRST_RETRY, LAST_RETRY, Outages, SourceState, clock_text

SOURCE_HELP = (
    "Source: a camera index (0) or /dev/videoN, rtsp://, http(s)://, udp://, a video file, a folder "
    "or glob of pictures, or synth:// (generated frames)."
)
CLOCK = Fraction(1, 90000)  # live pictures are stamped with the capture clock in these units
NETWORK_KINDS = ("rtsp", "http", "udp")  # may come up after us, and may go away and come back


@dataclass
class SourceSpec:
    kind: str  # camera, rtsp, http, udp, file, images, synth
    uri: str
    options: dict = field(default_factory=dict)


SCHEMES = {"rtsp": "rtsp", "rtsps": "rtsp", "http": "http", "https": "http", "udp": "udp", "rtp": "udp",
           "srt": "udp", "tcp": "udp", "synth": "synth"}  # fmt: skip


def parse_source(uri: str | SourceSpec, kind: str | None = None) -> SourceSpec:
    """Turn what the user typed into a SourceSpec (no I/O beyond looking at the file system).
    ``kind`` forces one where the command knows it (``image`` reads any path as a picture)."""
    if isinstance(uri, SourceSpec):
        return uri
    text = str(uri).strip()
    if kind is not None:
        return SourceSpec(kind, text)
    if text.isdigit():
        return SourceSpec("camera", text, {"index": int(text)})
    if text.startswith("/dev/video"):
        return SourceSpec("camera", text, {"index": text})
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme in SCHEMES:
        q = {k: v[-1] for k, v in parse_qs(parsed.query).items()} if scheme == "synth" else {}
        return SourceSpec(SCHEMES[scheme], text, q)
    if len(scheme) > 1 and "://" in text:  # (one letter is a Windows drive, C:\...)
        raise SourceError(f"source {text!r}: unknown kind {scheme}://. {SOURCE_HELP}")
    path = Path(text)
    if path.is_dir() or any(c in text for c in "*?[") or path.suffix.lower() in IMAGE_SUFFIXES:
        return SourceSpec("images", text)
    if not path.exists():
        raise SourceError(f"source {text!r}: no such file, and not a camera index, device or URL. {SOURCE_HELP}")
    return SourceSpec("file", text)


@dataclass
class SourceOptions:
    """How to read a source; each kind uses the options that mean something for it."""

    pace: bool = False  # files and pictures: hand frames over at their own rate (--fps for pictures)
    loop: bool = False  # files and pictures: start again at the end
    fps: float = 5.0  # pictures per second when paced
    opencv: bool = False  # http(s): open with OpenCV (MJPEG cameras) instead of PyAV
    chroma: bool = False  # keep the decoded chroma (``Picture.decoded_uv``): eval's truth, adapt's frames
    packets: bool = False  # files: hand over the other streams' packets too (for muxing them unchanged)
    give_up_after: float = 0.0  # live: seconds without a frame (at start or in an outage) before ending; 0: never


_SYNTH_DOWN_UNTIL: dict[str, float] = {}  # a dead fake camera refuses to reopen until then


class SynthSource(Source):
    """Generated frames at a set rate; can die after N frames and stay away ``down`` seconds."""

    def __init__(self, spec: SourceSpec, opts: SourceOptions | None = None):
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

    def read(self, timeout: float = 1.0) -> Read:
        if self.die_after and self.count >= self.die_after:
            _SYNTH_DOWN_UNTIL[self.uri] = time.monotonic() + self.down
            return Read(Status.ERROR, note="the fake camera died")
        wait = self.next_time - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.next_time = max(self.next_time + 1.0 / self.fps, time.monotonic() - 1.0 / self.fps)
        import cv2

        rgb = self.clip.frame(self.count)
        self.count += 1
        code = cv2.COLOR_RGB2GRAY if self.gray else cv2.COLOR_RGB2BGR
        return Read(Status.FRAME, picture_from_bgr(cv2.cvtColor(rgb, code), self.count - 1))


class CvSource(Source):
    """A camera (or an MJPEG URL) through OpenCV: V4L2, MJPG fourcc where offered, 1-frame buffer.
    OpenCV hands over BGR, so its pictures are full-range BT.601 luma (as JPEG), decided here."""

    def __init__(self, spec: SourceSpec, opts: SourceOptions | None = None):
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
        self.index = 0

    def read(self, timeout: float = 1.0) -> Read:
        ok, frame = self.cap.read()
        if not ok:
            return Read(Status.ERROR, note="the camera gave no frame")
        self.index += 1
        return Read(Status.FRAME, picture_from_bgr(frame, self.index - 1))

    def close(self) -> None:
        self.cap.release()


class ImageSource(Source):
    """Pictures from a file, folder or glob, in name order; paced at ``fps`` for a live view.

    Each Picture holds the picture as decoded (``pixels``, 8 or 16 bits, and ``alpha``) for the
    commands that color stills, and its full-range BT.601 luma (as JPEG) for the video path."""

    policy = Policy.FILE

    def __init__(self, spec: SourceSpec, opts: SourceOptions | None = None):
        opts = opts or SourceOptions()
        self.paths, _ = expand_inputs([spec.uri])
        if not self.paths:
            raise SourceError(f"{spec.uri}: no pictures found")
        self.fps, self.pace, self.loop, self.i, self.index = opts.fps, opts.pace, opts.loop, 0, 0
        self.next_time = time.monotonic()
        self.problems: list[str] = []  # pictures that could not be read (skipped, as a file skips a bad frame)

    def read(self, timeout: float = 1.0) -> Read:
        if self.i >= len(self.paths):
            if not self.loop:
                return Read(Status.END)
            self.i = 0
        if self.pace:
            wait = self.next_time - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.next_time = time.monotonic() + 1.0 / self.fps
        path = self.paths[self.i]
        self.i += 1
        try:
            img, alpha = read_picture(path)
        except ImageReadError as e:
            if str(e) not in self.problems:
                self.problems.append(str(e))
            return Read(Status.SKIPPED, note=str(e))
        img8 = (img >> 8).astype(np.uint8) if img.dtype == np.uint16 else img
        bgr = img8[..., ::-1] if img8.ndim == 3 else img8
        pic = picture_from_bgr(bgr, self.index, pixels=img, alpha=alpha, name=str(path))
        self.index += 1
        return Read(Status.FRAME, pic)


# One class per kind: how each kind is opened and decoded is written once, for every command.
SOURCES = {
    "camera": CvSource,
    "rtsp": StreamSource,
    "http": StreamSource,  # CvSource with --opencv (MJPEG cameras)
    "udp": StreamSource,
    "file": FileSource,
    "images": ImageSource,
    "synth": SynthSource,
}


def _class(spec: SourceSpec, opts: SourceOptions) -> type[Source]:
    return CvSource if spec.kind == "http" and opts.opencv else SOURCES[spec.kind]


def open_raw(spec: SourceSpec, opts: SourceOptions) -> Source:
    """The source object for a spec, from ``SOURCES`` (raises SourceError or VideoError, naming
    the value, when it cannot be opened)."""
    cls = _class(spec, opts)
    source = getattr(cls, "from_spec", cls)(spec, opts)
    source.spec = spec
    return source


def open_source(uri: str | SourceSpec, policy: Policy | None = None, kind: str | None = None, log=None, **options):
    """Open what the user named (a camera index, device, URL, file, folder or glob of pictures,
    synth://) for reading. ``policy`` LIVE (the default for cameras and streams) reopens a failed
    source and stamps pictures with the capture clock; FILE reads it once, as it is. ``options``
    are ``SourceOptions`` fields. The object returned has ``read``, ``stop``, ``close``, ``spec``,
    ``policy`` and ``problems`` (frames a file lost)."""
    spec = parse_source(uri, kind)
    opts = SourceOptions(**options)
    policy = policy or _class(spec, opts).policy  # files and pictures: FILE; cameras and streams: LIVE
    if policy is Policy.LIVE:
        return LiveSource(spec, opts, log=log)
    source = open_raw(spec, opts)
    source.policy = policy
    return source


def read_still(path: str | Path) -> Picture:
    """One picture file through the factory, as every command reads pictures: a Picture holding
    it as decoded (``pixels``, ``alpha``) and its luma; ImageReadError naming the file otherwise."""
    try:
        source = open_source(path, Policy.FILE, kind="images")
    except SourceError as e:
        raise ImageReadError(str(e)) from None
    try:
        status, pic, note = source.read()
    finally:
        source.close()
    if status is not Status.FRAME:
        raise ImageReadError(note or f"{path}: not a readable image")
    return pic


class LiveSource(Source):
    """Reads Pictures from a source, reopening it with backoff when it fails (live policy).

    Pictures are stamped with the capture clock, so a recording keeps real time across drops. A
    network camera that is not up yet is waited for. ``log`` gets a line for each loss and return;
    ``outages`` holds the gaps and the current state; ``gave_up`` says why it ended early, if it did.
    """

    policy = Policy.LIVE

    def __init__(self, spec: str | SourceSpec, opts: SourceOptions | None = None, log=None):
        self.spec = parse_source(spec)
        self.opts = opts or SourceOptions(pace=True)
        self.log = log or (lambda m: None)
        self.stop_event = threading.Event()
        self.reconnects = 0
        self._problems: list[str] = []
        self.index = 0
        self.start = time.monotonic()
        self.backoff = FIRST_RETRY
        self.outages = Outages()
        self.gave_up: str | None = None
        try:
            self.source = open_raw(self.spec, self.opts)  # fail early and clearly on a bad source ...
        except (SourceError, OSError, ValueError) as e:
            if self.spec.kind not in NETWORK_KINDS:
                raise
            self.source = None  # ... but a network camera may boot after the recorder: wait for it
            self.outages.lost(str(e))
            wait = self.opts.give_up_after
            hint = f"giving up after {wait:g} s" if wait else "until it comes up (Ctrl-C stops)"
            self.log(f"source {self.spec.uri}: not up yet ({e}); retrying with backoff {hint}")

    @property
    def ends(self) -> bool:
        """Files and picture folders end; cameras and streams are reopened when they fail."""
        return self.spec.kind in ("file", "images")

    @property
    def problems(self) -> list[str]:
        """What a file lost (undecodable frames): the run is then partial."""
        return [*self._problems, *(self.source.problems if self.source is not None else ())]

    @property
    def rotation(self) -> int:
        return getattr(self.source, "rotation", 0)

    def stop(self) -> None:
        self.stop_event.set()
        self.outages.end()  # an outage still open when the run stops is counted, up to now

    def _wait(self) -> None:
        self.stop_event.wait(self.backoff)
        self.backoff = min(self.backoff * 2, LAST_RETRY)

    def _give_up(self) -> bool:
        down = self.outages.down_for()
        if not self.opts.give_up_after or down < self.opts.give_up_after:
            return False
        self.gave_up = f"no frame from {self.spec.uri} for {down:.0f} s ({self.outages.reason})"
        self.outages.end()
        return True

    def read(self, timeout: float = 1.0) -> Read:
        if self.stop_event.is_set():
            self.outages.end()
            return Read(Status.END)
        if self.source is None:
            if self._give_up():
                return Read(Status.END)
            try:
                self.source = open_raw(self.spec, self.opts)
            except (SourceError, OSError, ValueError) as e:  # VideoError included: a stream still away
                self.outages.lost(str(e))
                self._wait()
                return Read(Status.EMPTY, note=str(e))
            if self.outages.state is not SourceState.CONNECTING:  # a first connection is no reconnect
                self.reconnects += 1
            self.backoff = FIRST_RETRY
        r = self.source.read(timeout)
        if r.status is Status.FRAME:
            gap = self.outages.frame()
            if gap is not None:
                n, since = len(self.outages.gaps), clock_text(gap[0])
                self.log(f"source {self.spec.uri}: reconnected, back after {gap[1]:.1f} s (outage {n}, from {since})")
            pic, captured = r.item, time.monotonic()
            pic.index, pic.captured = self.index, captured
            pic.pts, pic.time_base = int((captured - self.start) / CLOCK), CLOCK
            self.index += 1
            return r
        if r.status is Status.PACKET:
            return Read(Status.EMPTY)  # a live view has no use for a file's other streams
        if r.status is Status.END and self.ends:
            self.outages.end()
        if r.status is not Status.ERROR:
            return r  # END, EMPTY, SKIPPED (the source noted what it skipped)
        if self.ends:  # a file is not a camera: never replay it
            self._problems.append("reading failed before the end of the file")
            return Read(Status.END)
        if self.outages.lost(r.note or "read failed"):
            self.log(
                f"source {self.spec.uri}: lost at {clock_text(time.time())} ({r.note or 'read failed'}); reconnecting"
            )
        self.source.close()
        self.source = None
        if self._give_up():
            return Read(Status.END)
        self._wait()
        return Read(Status.EMPTY)

    def __iter__(self):
        return pictures(self)

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
