"""Where colorized frames go, by URI: a window, a recording, an HTTP preview, a network push.

    display                 an OpenCV window with an fps / latency overlay (q or Esc quits)
    rec.mp4                 a recording (``--segment MINUTES`` rolls rec_000.mp4, rec_001.mp4, ...);
                            with a file ``source``, that file colorized: its timestamps, audio and
                            metadata kept (``rtcolor colorize``)
    http://127.0.0.1:8080   a web page with the live stream as MJPEG (bound to the host given;
                            127.0.0.1 unless you name another address)
    udp://host:port         MPEG-TS / H.264 pushed with PyAV (rtsp:// pushes to an RTSP server)

Every sink has ``write(picture)`` and ``close(complete)``; none of them knows about models.
"""

from __future__ import annotations

import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from ..errors import RtcolorError
from .frames import Picture
from .outputs import Inputs, OutputError, check_output
from .preview import MjpegServer
from .video import FileSink, VideoError, check_writable_format

SINK_HELP = (
    "Output (repeatable): display, a video file (recording), http://127.0.0.1:PORT (MJPEG web preview), "
    "udp://HOST:PORT or rtsp://... (push)."
)


class SinkError(RtcolorError):
    """A sink that cannot be opened, with the reason and the fix."""


class RecordingSink:
    """Records to a file, optionally rolling to a new file every ``segment_minutes``.

    Each segment is written under a temporary name and renamed when closed, so a crash never
    leaves a half-written file under the real name. A size change (a camera that came back with
    another resolution) starts a new segment rather than failing.
    """

    def __init__(
        self,
        path: str | Path,
        segment_minutes: float = 0.0,
        codec: str = "libx264",
        crf: int = 20,
        force: bool = False,
        protect: Inputs | frozenset[Path] = frozenset(),
        log=None,
        preset: str = "veryfast",
    ):
        self.path = Path(path)
        self.protect = protect if isinstance(protect, Inputs) else Inputs(protect)
        self.log = log or (lambda m: None)
        self.failed: str | None = None  # why recording stopped early (a full disk); the rest goes on
        if not self.path.parent.exists():
            raise SinkError(f"cannot record to {self.path}: folder {self.path.parent} does not exist")
        check_writable_format(self.path, codec)
        try:  # a read-only or full folder fails now, not when the first segment closes
            check_output(self.path)
        except OutputError as e:
            raise SinkError(f"cannot record: {e}") from None
        self.segment_seconds = segment_minutes * 60.0
        # Checked before the first frame: a recording must never replace the input it is made from,
        # nor, silently, yesterday's recording (segments included).
        ours = self.path.parent.glob(f"{self.path.stem}_[0-9][0-9][0-9]{self.path.suffix}") if segment_minutes else []
        for target in [self.path, *ours]:
            hit = self.protect.holding(target)
            if hit is not None:
                raise SinkError(Inputs.message(target, hit, "--out"))
            if target.exists() and not force:
                raise SinkError(f"recording {target} exists; pass --force to overwrite it, or choose another --out")
        self.codec, self.crf, self.preset, self.force = codec, crf, preset, force
        self.sink: FileSink | None = None
        self.segment = 0
        self.started = 0.0
        self.first_pts = 0
        self.shape: tuple | None = None
        self.written: list[Path] = []

    def _name(self) -> Path:
        if not self.segment_seconds and self.segment == 0:
            return self.path  # one file, unless the camera changes resolution (then rec_001, ...)
        return self.path.with_name(f"{self.path.stem}_{self.segment:03d}{self.path.suffix}")

    def _roll(self, pic: Picture) -> None:
        if self.sink is not None:
            self.written.append(self.sink.close(complete=True))
            self.segment += 1
            # a part made later than the check in __init__, or one that is an input (never replaced)
            while (not self.force and self._name().exists()) or self.protect.holding(self._name()):
                self.segment += 1
        self.sink = FileSink(self._name(), codec=self.codec, crf=self.crf, preset=self.preset, rate=Fraction(30))
        self.started, self.first_pts, self.shape = pic.captured, pic.pts or 0, pic.y.shape

    def write(self, pic: Picture) -> None:
        """Record one picture. A write that fails (the disk filled up) stops this recording, with
        what was recorded so far finalized where the disk allows, and never the stream: a live
        preview or a second recording elsewhere goes on."""
        if self.failed:
            return
        try:
            self._write(pic)
        except VideoError as e:
            self.failed = f"recording stopped: {e}"
            self.log(self.failed)
            sink, self.sink = self.sink, None
            if sink is not None and sink.started:
                try:
                    self.written.append(sink.close(complete=False))
                except VideoError as e2:
                    self.failed += f"; {e2}"
            elif sink is not None:
                sink.abort()

    def _write(self, pic: Picture) -> None:
        if (
            self.sink is None
            or pic.y.shape != self.shape
            or (self.segment_seconds and pic.captured - self.started >= self.segment_seconds)
        ):
            self._roll(pic)
        if pic.pts is not None:  # each segment starts at time 0
            pic = replace(pic, pts=pic.pts - self.first_pts)
        self.sink.write(pic)

    def close(self, complete: bool = True) -> None:
        sink, self.sink = self.sink, None
        if self.failed:
            raise SinkError(self.failed)
        if sink is not None and sink.started:
            self.written.append(sink.close(complete=complete))  # a failure (full disk) is reported, not hidden
        elif sink is not None:
            sink.abort()  # no frame at all: nothing to keep

    def abort(self) -> None:
        """Drop the segment being written (the user gave up on finishing it); finished ones stay."""
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.abort()


class WindowSink:
    """An OpenCV window with fps and latency; q or Esc asks the pipeline to stop."""

    def __init__(self, on_quit=None, title: str = "rtcolor"):
        import cv2

        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise SinkError(
                "--out display needs a desktop and OpenCV with GUI support (this install has no GUI: "
                "pip install opencv-python instead of opencv-python-headless); or record with --out FILE.mp4 "
                "or watch in a browser with --out http://127.0.0.1:8080"
            ) from None
        self.title, self.on_quit = title, on_quit
        self.times: list[float] = []

    def write(self, pic: Picture) -> None:
        import cv2

        now = time.monotonic()
        self.times = [t for t in self.times if now - t < 1.0] + [now]
        img = pic.to_bgr()
        text = f"{len(self.times)} fps  latency {1000 * (now - pic.captured):.0f} ms"
        cv2.putText(img, text, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 255, 255), 2, cv2.LINE_AA)
        cv2.imshow(self.title, img)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27) and self.on_quit:
            self.on_quit()

    def close(self, complete: bool = True) -> None:
        import cv2

        cv2.destroyWindow(self.title)


class PushSink:
    """H.264 pushed to udp:// (MPEG-TS) or rtsp:// (RECORD, over TCP) with PyAV, tuned for latency.

    A receiver that goes away (an RTSP server restarting) does not end the stream: the push is
    reopened at most every RETRY seconds, and the pictures meanwhile are not sent (live: a late
    picture is worth nothing). ``outages`` counts the times it was lost.
    """

    RETRY = 2.0

    def __init__(self, uri: str, log=None):
        self.uri, self.log = uri, log or (lambda m: None)
        self.format = "rtsp" if uri.startswith("rtsp") else "mpegts"
        self.options = {"rtsp_transport": "tcp"} if self.format == "rtsp" else {}
        self.outages = 0
        self._next_try = 0.0
        self._open()

    def _open(self) -> None:
        import av

        try:
            self.container = av.open(self.uri, "w", format=self.format, options=self.options)
        except (av.error.FFmpegError, OSError) as e:
            raise SinkError(f"cannot push to {self.uri}: {e}") from None
        self.stream = None
        self.t0: float | None = None

    def _lost(self, e: Exception) -> None:
        self.outages += 1
        self.log(f"push to {self.uri} lost ({e}); retrying every {self.RETRY:g} s")
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the connection is already gone
            pass
        self.container = None
        self._next_try = time.monotonic() + self.RETRY

    def write(self, pic: Picture) -> None:
        import av

        if self.container is None:
            if time.monotonic() < self._next_try:
                return
            try:
                self._open()
                self.log(f"push to {self.uri}: reconnected")
            except SinkError:
                self._next_try = time.monotonic() + self.RETRY
                return
        h, w = pic.y.shape
        try:
            if self.stream is None:
                self.stream = self.container.add_stream("libx264", rate=30)
                self.stream.width, self.stream.height, self.stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
                self.stream.time_base = Fraction(1, 90000)
                self.stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
                self.stream.codec_context.gop_size = 30  # a viewer joining mid-stream waits 1 s at most
                self.t0 = pic.captured
            if (h - h % 2, w - w % 2) != (self.stream.height, self.stream.width):
                raise ValueError(f"the picture size changed to {w}x{h}")  # a new push, with new headers
            bgr = np.ascontiguousarray(pic.to_bgr()[: h - h % 2, : w - w % 2])
            frame = av.VideoFrame.from_ndarray(bgr, "bgr24").reformat(format="yuv420p")
            frame.pts, frame.time_base = int((pic.captured - self.t0) * 90000), Fraction(1, 90000)
            self.container.mux(self.stream.encode(frame))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self._lost(e)

    def close(self, complete: bool = True) -> None:
        import av

        if self.container is None:
            return
        try:
            if self.stream is not None:
                self.container.mux(self.stream.encode())
            self.container.close()
        except (av.error.FFmpegError, OSError):
            pass  # the receiver went away at the very end: nothing is left to save on our side


def open_sink(
    uri: str,
    segment_minutes: float = 0.0,
    on_quit=None,
    log=None,
    force: bool = False,
    protect: Inputs | frozenset[Path] = frozenset(),
    source=None,
    codec: str = "libx264",
    crf: int | None = None,
    preset: str = "veryfast",
    allowed_hosts: tuple[str, ...] = (),
):
    """The sink for ``uri`` (raises SinkError or VideoError when it cannot be opened). A recording
    never replaces a file in ``protect`` (the inputs), nor an existing file unless ``force``.
    With a file ``source`` (``decode.FileSource``) a file is that source colorized, encoded with
    ``codec``, ``crf``, ``preset``: the caller has checked the name (``colorize`` does, per input)."""
    if source is not None:
        return FileSink(uri, source=source, codec=codec, crf=18 if crf is None else crf, preset=preset)
    uri = str(uri)
    parsed = urlparse(uri)
    if uri == "display":
        return WindowSink(on_quit=on_quit)
    if parsed.scheme in ("http",):
        try:
            port = parsed.port
        except ValueError:
            raise SinkError(f"--out {uri}: the port must be a number from 1 to 65535") from None
        host = parsed.hostname or "127.0.0.1"
        try:
            sink = MjpegServer(host, port or 8080, allowed_hosts=tuple(allowed_hosts))
        except OSError as e:
            raise SinkError(f"cannot serve on {host}:{port or 8080}: {e} (choose another port)") from None
        if log:
            log(f"live preview: {sink.url}")
        return sink
    if parsed.scheme in ("udp", "rtsp", "rtp", "srt"):
        return PushSink(uri, log=log)
    if parsed.scheme:
        raise SinkError(f"--out {uri}: unknown kind; {SINK_HELP}")
    return RecordingSink(
        uri,
        segment_minutes=segment_minutes,
        codec=codec,
        crf=20 if crf is None else crf,
        force=force,
        protect=protect,
        log=log,
        preset=preset,
    )
