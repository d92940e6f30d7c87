"""Decoding with PyAV (FFmpeg): video files and network streams, and the one conversion of a
decoded frame into a Picture that both use.

A frame's luma plane is kept as decoded and labelled with the frame's own range (full or video
levels) and Y'CbCr matrix, here and nowhere else; every command that reads video (colorize,
stream, eval, adapt) gets its Pictures from this file, through ``sources.open_source``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..color import ycbcr_matrix_for
from .frames import Picture, Policy, Read, Source, SourceError, Status, subsampling_for
from .video import _av, _info, open_input

STALL_SECONDS = 5.0  # a network stream that sends nothing for this long is lost (then reopened)


def picture_from_av(frame, index: int, size: tuple[int, int] | None = None, chroma: bool = False, **kw) -> Picture:
    """A decoded PyAV frame -> Picture holding its luma plane as decoded, with the frame's range
    and matrix; scaled to ``size`` (width, height) when given. ``chroma`` keeps the decoded chroma
    planes too (``decoded_uv``)."""
    width, height = size or (frame.width, frame.height)
    subsampling = subsampling_for(height, width)
    fmt = frame.format.name
    keyframe = bool(frame.key_frame)  # before a reformat, whose new frame does not carry it
    full = fmt.startswith("yuvj") or getattr(frame, "color_range", 0) == 2
    target = "yuv444p" if subsampling == (1, 1) else ("yuvj420p" if full else "yuv420p")
    if fmt != target or (frame.width, frame.height) != (width, height):
        frame = frame.reformat(width=width, height=height, format=target)
    plane = frame.planes[0]
    y = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, : frame.width]
    pic = Picture(
        y=np.ascontiguousarray(y),
        index=index,
        pts=frame.pts,
        time_base=frame.time_base,
        full_range=full,
        matrix=ycbcr_matrix_for(frame.height, getattr(frame, "colorspace", None)),
        subsampling=subsampling,
        keyframe=keyframe,
        **kw,
    )
    if chroma:
        ch, cw = pic.chroma_shape
        pic.decoded_uv = tuple(
            np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:ch, :cw].copy() for p in frame.planes[1:3]
        )
    return pic


class FileSource(Source):
    """Decodes a video file into Pictures, in order, and (``packets``) hands over the other streams'
    packets too, so a sink can mux them unchanged.

    A damaged stream is decoded as far as possible: bad packets are skipped and counted in
    ``problems``; the caller decides what that means for the exit code. ``pace`` hands frames over
    at the file's own rate (a file standing in for a camera); ``loop`` starts again at the end.
    """

    policy = Policy.FILE

    def __init__(
        self, path: str | Path, pace: bool = False, loop: bool = False, chroma: bool = False, packets: bool = False
    ):
        self.path = Path(path)
        self.pace, self.loop, self.chroma = pace, loop, chroma
        self.container = open_input(self.path)
        self.info = _info(self.path, self.container)
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"  # frame + slice threads in the decoder
        types = ("audio", "subtitle") if packets else ()
        self.copy_streams = [s for s in self.container.streams if s.type in types]
        self.problems: list[str] = []  # frames lost: the output is partial
        self.warnings: list[str] = []  # nothing lost, but the user should know (a size change)
        self.rotation = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the first frame
        self.metadata = dict(self.container.metadata)
        self.index = 0
        self._items = self._decode()
        self._t0: float | None = None  # pacing: the wall-clock time of pts 0
        self._pts_offset = 0  # --loop: each pass continues the previous pass's timestamps
        self._last_pts = 0

    @classmethod
    def from_spec(cls, spec, opts) -> FileSource:
        """From ``sources.open_source``: a parsed URI and its reading options."""
        return cls(spec.uri, pace=opts.pace, loop=opts.loop, chroma=opts.chroma, packets=opts.packets)

    def read(self, timeout: float = 1.0) -> Read:
        """The next Picture (or packet of a copied stream); END after the last one."""
        try:
            item = next(self._items)
        except StopIteration:
            if not self.loop or self.index == 0:
                return Read(Status.END)
            self.container.seek(0)
            self._items = self._decode()
            self._pts_offset = self._last_pts + 1
            return Read(Status.EMPTY)
        if not isinstance(item, Picture):
            return Read(Status.PACKET, item)
        if item.pts is not None:
            item.pts += self._pts_offset
            self._last_pts = item.pts
            if self.pace and item.time_base is not None:
                t = float(item.pts * item.time_base)
                if self._t0 is None:
                    self._t0 = time.monotonic() - t
                wait = self._t0 + t - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
        return Read(Status.FRAME, item)

    def _decode(self):
        """Pictures and pass-through packets, in demux order, until the end of the file."""
        av = _av()
        streams = [self.video, *self.copy_streams]
        demux = self.container.demux(*streams)
        first = self.index
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.error.FFmpegError as e:
                self._problem(f"demuxing stopped: {e}")
                packet = None  # flush the decoder: frames it still holds are good ones
            if packet is None:
                try:
                    for frame in self.video.codec_context.decode(None):
                        yield self._picture(frame)
                except av.error.FFmpegError:
                    pass
                break
            if packet.stream is not self.video:
                if packet.dts is not None:
                    yield packet
                continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                self._problem(f"undecodable packet at pts {packet.pts}: {e}")
                continue
            for frame in frames:
                if self.index == 0:
                    self.rotation = int(getattr(frame, "rotation", 0) or 0)
                yield self._picture(frame)
        # Only a count the container stores (MP4, MKV with statistics) says frames are missing; an
        # estimate from duration x rate (MPEG-TS, AVI) is off by a frame or two on healthy files.
        announced, decoded = self.video.frames, self.index - first
        if announced and decoded < announced * 0.98 - 1 and not self.problems:
            self.problems.append(f"decoded {decoded} of the {announced} frames the container announces")

    def _problem(self, text: str) -> None:
        if text not in self.problems:  # --loop meets the same damage on every pass: noted once
            self.problems.append(text)

    def _picture(self, frame) -> Picture:
        if self.size is None:
            self.size = (frame.width, frame.height)
        if (frame.width, frame.height) != self.size and not self.warnings:
            # One rule for every command: a file is one picture size, so the frames after a
            # mid-file size change are scaled to the first size, and the user is told.
            width, height = self.size
            self.warnings.append(
                f"the picture size changes from {width}x{height} to {frame.width}x{frame.height} at frame "
                f"{self.index}; later frames are scaled to {width}x{height}"
            )
        if frame.time_base is None:
            frame.time_base = self.video.time_base
        pic = picture_from_av(frame, self.index, self.size, chroma=self.chroma, rotation=self.rotation)
        self.index += 1
        return pic

    def close(self) -> None:
        self.container.close()


class StreamSource(Source):
    """A network stream (rtsp, http, udp, ...) through PyAV. A decode error ends ``read`` with
    ERROR; the live policy reopens the stream."""

    def __init__(self, uri: str, kind: str):
        av = _av()
        options = {"timeout": "5000000"}  # microseconds: a dead stream is an error, not a hang
        if kind == "rtsp":
            options = {"rtsp_transport": "tcp", "timeout": "5000000"}
        elif kind == "udp":
            options = {"timeout": "5000000", "overrun_nonfatal": "1", "fifo_size": "500000"}
        try:
            # (open, read) timeouts: a server that accepts and then says nothing is a stall, not a
            # hang. Half the stall time for reads: the first timed-out read ends the demuxer, which
            # hands back the frames its decoder still held, and only the next one fails.
            self.container = av.open(uri, options=options, timeout=(10.0, STALL_SECONDS / 2))
        except (av.error.FFmpegError, OSError) as e:
            raise SourceError(f"cannot open {uri}: {e}") from None
        if not self.container.streams.video:
            self.container.close()
            raise SourceError(f"{uri}: has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.fps = float(self.stream.average_rate or 30)
        self._frames = self.container.decode(self.stream)
        self.index = 0

    @classmethod
    def from_spec(cls, spec, opts) -> StreamSource:
        """From ``sources.open_source``: a parsed URI (its kind picks the transport options)."""
        return cls(spec.uri, spec.kind)

    def read(self, timeout: float = 1.0) -> Read:
        av = _av()
        try:
            frame = next(self._frames)
        except StopIteration:  # a camera does not end: the other side went away (the live policy reopens)
            return Read(Status.ERROR, note="the stream ended")
        except (av.error.FFmpegError, OSError) as e:
            return Read(Status.ERROR, note=str(e) or e.__class__.__name__)
        pic = picture_from_av(frame, self.index, rotation=int(getattr(frame, "rotation", 0) or 0))
        self.index += 1
        return Read(Status.FRAME, pic)

    def close(self) -> None:
        self.container.close()
