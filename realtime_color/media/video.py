"""Video files through PyAV (FFmpeg): opening one for decoding (``decode.FileSource`` reads it), and
a sink that encodes and muxes.

Nothing is lost on the way: every decoded frame keeps its pts (variable frame rate survives),
packets of the other streams (audio, subtitles) are handed over untouched and muxed packet for
packet, rotation and metadata are copied, and the output is written under a temporary name that
becomes the real name only when complete (or ``<stem>.partial<suffix>`` when it was cut short).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import RtcolorError
from .frames import Picture
from .outputs import discard, explain, sibling, temp_path

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".mpg", ".mpeg", ".wmv", ".flv"}
CODECS = ("libx264", "libx265", "h264_nvenc", "hevc_nvenc")
KEYFRAME_MIN_SECONDS = 1.0  # source keyframes closer than this to the last one are not followed


@dataclass(frozen=True)
class EncoderSettings:
    """How a colorized video is encoded: the encoder, its quality (x264/x265 CRF, NVENC CQ: lower
    is better, 0 lossless) and its speed preset. One value travels from the command line to every
    file sink, the cluster's workers included."""

    codec: str = "libx264"
    crf: int = 18
    preset: str = "veryfast"

    def sink_options(self) -> dict:
        """``FileSink``'s keywords."""
        return {"codec": self.codec, "crf": self.crf, "preset": self.preset}


class VideoError(RtcolorError):
    """A video that cannot be read or written, with the reason and the fix."""


@dataclass
class VideoInfo:
    """What the source holds, as far as the container says."""

    path: Path
    width: int
    height: int
    codec: str
    pix_fmt: str
    rate: Fraction | None
    time_base: Fraction
    frames: int  # 0 when the container does not say
    duration: float | None  # seconds


def _av():
    import av

    return av


def open_input(path: str | Path):
    """Open ``path`` for decoding or raise VideoError naming what is wrong."""
    av = _av()
    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path} is a folder; pass video files (or the folder with -o pointing to a folder)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as e:
        raise VideoError(f"{path}: not a video FFmpeg can read ({e.__class__.__name__}: {e})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.name:
        container.close()
        raise VideoError(f"{path}: its video codec is not supported by this FFmpeg build")
    return container


def _info(path: Path, container) -> VideoInfo:
    vs = container.streams.video[0]
    duration = float(container.duration) / 1e6 if container.duration else None
    return VideoInfo(
        path=path,
        width=vs.codec_context.width,
        height=vs.codec_context.height,
        codec=vs.codec_context.name,
        pix_fmt=vs.codec_context.pix_fmt or "?",
        rate=vs.average_rate,
        time_base=vs.time_base,
        frames=vs.frames or (int(round(duration * vs.average_rate)) if duration and vs.average_rate else 0),
        duration=duration,
    )


def partial_name(path: Path) -> Path:
    """Where an incomplete output goes: clip.mp4 -> clip.partial.mp4 (shortened to fit the file
    system when clip.mp4's name is near its limit)."""
    return sibling(path, infix=".partial")


def check_writable_format(path: str | Path, codec: str = "libx264") -> None:
    """``VideoError`` unless FFmpeg can write ``codec`` into a file named like ``path``; checked in
    memory, so a recording with a bad name fails before the camera starts, not at its first frame."""
    import io

    av = _av()
    probe = io.BytesIO()
    probe.name = Path(path).name  # FFmpeg guesses the container from the name
    try:
        container = av.open(probe, "w")
        try:
            container.add_stream(codec, rate=30)
        finally:
            container.close()
    except (ValueError, av.error.FFmpegError) as e:
        raise VideoError(f"cannot record to {path}: {e}; name an .mp4, .mkv or .mov file") from None


class FileSink:
    """Encodes colorized Pictures into a video file and muxes the source's other packets unchanged."""

    def __init__(
        self,
        path: str | Path,
        source=None,  # a decode.FileSource whose other streams and metadata are copied
        codec: str = "libx264",
        crf: int = 18,
        preset: str = "veryfast",
        rate: Fraction | None = None,
    ):
        av = _av()
        self.path = Path(path)
        if codec not in av.codecs_available:
            raise VideoError(f"encoder {codec!r} is not in this FFmpeg build; use one of libx264, libx265")
        self.tmp = temp_path(self.path, f"rtcolor-tmp-{os.getpid()}")  # the suffix tells FFmpeg the container
        try:
            self.container = av.open(str(self.tmp), "w")
        except (av.error.FFmpegError, ValueError, OSError) as e:
            if "format" in str(e):
                raise VideoError(f"cannot write {self.path}: {e}; name an .mp4, .mkv or .mov output") from None
            raise VideoError(explain(self.path, e)) from None
        self.codec, self.crf, self.preset = codec, crf, preset
        self.source = source
        self.rate = rate or (source.info.rate if source else None) or Fraction(30)
        # The video stream comes first in the file (stream 0, as players and tools expect); its
        # size and format are set when the first colorized picture arrives.
        try:
            self.stream = self.container.add_stream(codec, rate=self.rate)
        except (ValueError, av.error.FFmpegError) as e:
            self.abort()
            raise VideoError(f"{self.path.name}: {e}; name an .mp4 or .mkv output (or another --codec)") from None
        self.started = False
        self.copied: dict[int, object] = {}
        if source is not None:
            self.container.metadata.update(source.metadata)
            for s in source.copy_streams:
                try:
                    out = self.container.add_stream_from_template(s)
                    out.metadata.update(s.metadata)
                    self.copied[s.index] = out
                except (ValueError, av.error.FFmpegError) as e:
                    self.abort()
                    raise VideoError(
                        f"{self.path.suffix} cannot hold the {s.type} stream ({s.codec_context.name}): {e}; "
                        "use an .mkv output"
                    ) from None
        self.frames = 0
        self.out_of_order = 0  # frames left out because their time went backwards (damaged files)
        self._last_pts: int | None = None
        self._last_key: float | None = None  # time of the last source keyframe made a keyframe here
        # Frames outside [keep_from, stop_at) (seconds; None: unbounded) are encoded but not written:
        # a segment's encoder sees the frames around its part, as one run's encoder would, and
        # makes the first frame kept and the first after them IDRs (see segments.py).
        self.keep_from: Fraction | None = None
        self.stop_at: Fraction | None = None
        self._cuts: set[int] = set()
        self._pending_packets: list = []

    def _open_video(self, pic: Picture) -> None:
        av = _av()
        h, w = pic.y.shape
        stream = self.stream
        stream.width, stream.height = w, h
        # libx264 refuses 4:2:0 at odd sizes; every source sets 4:4:4 for them (frames.subsampling_for)
        stream.pix_fmt = "yuv444p" if pic.subsampling == (1, 1) else ("yuvj420p" if pic.full_range else "yuv420p")
        if pic.time_base is not None:
            stream.time_base = pic.time_base
            stream.codec_context.time_base = pic.time_base
        stream.codec_context.colorspace = 1 if pic.matrix == "bt709" else 6
        stream.codec_context.color_range = 2 if pic.full_range else 1
        if self.codec.startswith("lib"):
            stream.options = {"crf": str(self.crf), "preset": self.preset}
        else:
            stream.options = {"cq": str(self.crf), "preset": "p4"}
        if self.path.suffix.lower() == ".avi":
            # AVI stores one time per frame, in decoding order: B-frames (reordered) come out one
            # frame late and out of order (a 15 fps MJPEG AVI's first frame at 0.067 s, not 0)
            stream.options = {**stream.options, "bf": "0"}
        rotation = self.source.rotation if self.source is not None else pic.rotation
        if rotation:  # a phone clip filmed upright plays upright (recordings from `stream` included)
            stream.set_display_rotation(rotation)
        if self.source is not None:
            stream.metadata.update(self.source.video.metadata)
        self._format = stream.pix_fmt
        try:
            self.container.start_encoding()
        except OSError as e:  # FFmpeg opens the file here: a read-only folder, a full disk
            raise VideoError(explain(self.path, e)) from None
        except av.error.FFmpegError as e:
            raise VideoError(f"cannot start the {self.codec} encoder: {e}") from None

    def write(self, pic: Picture) -> None:
        """Encode one colorized picture (its pts kept) and mux the result."""
        av = _av()
        if not self.started:
            self._open_video(pic)
            self.started = True
            for packet in self._pending_packets:
                self.write_packet(packet)
            self._pending_packets.clear()
        h, w = pic.y.shape
        # Each plane is copied once, straight into the frame's own buffers (joining them into one
        # array for from_ndarray first copied every picture twice).
        frame = av.VideoFrame(w, h, self._format)
        for plane, data in zip(frame.planes, (pic.y, pic.u, pic.v), strict=True):
            if plane.line_size == data.shape[1]:
                plane.update(np.ascontiguousarray(data))
            else:  # rows padded for alignment
                np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: data.shape[0], : data.shape[1]] = data
        if pic.pts is not None and pic.time_base is not None:
            frame.pts, frame.time_base = pic.pts, pic.time_base
        else:
            frame.pts, frame.time_base = pic.index, 1 / self.rate
        if self._last_pts is not None and frame.pts <= self._last_pts:
            # A damaged file's decoder can hand back a frame from the past; muxing it would break
            # the whole file at its close ("Invalid argument"), so it is left out and counted.
            self.out_of_order += 1
            return
        self._last_pts = frame.pts
        t = frame.pts * frame.time_base
        if self._cut_due(t):  # nothing written may refer to a frame that is not: an IDR here
            frame.pict_type = av.video.frame.PictureType.I  # (libx264 closes its GOPs)
            self._last_key = float(t)
        elif pic.keyframe and self._key_due(float(t)):
            frame.pict_type = av.video.frame.PictureType.I
        try:
            self._mux(self.stream.encode(frame))
        except (OSError, av.error.FFmpegError) as e:  # a disk that fills up mid-way
            raise VideoError(explain(self.path, e)) from None
        self.frames += self._kept(t)

    def _kept(self, t: Fraction) -> bool:
        return (self.keep_from is None or t >= self.keep_from) and (self.stop_at is None or t < self.stop_at)

    def _cut_due(self, t: Fraction) -> bool:
        """Whether the frame at ``t`` is the first at or after ``keep_from`` or ``stop_at``."""
        for i, at in enumerate((self.keep_from, self.stop_at)):
            if at is not None and t >= at and i not in self._cuts:
                self._cuts.add(i)
                return True
        return False

    def _mux(self, packets) -> None:
        if self.keep_from is not None or self.stop_at is not None:
            packets = [p for p in packets if p.pts is None or self._kept(p.pts * p.time_base)]
        self.container.mux(packets)

    def _key_due(self, t: float) -> bool:
        """Whether a source keyframe at ``pts`` becomes a keyframe here too. Following the source's
        keyframes keeps its seek points and makes a film colorized in segments (cut at source
        keyframes) the same GOPs as one colorized in one run; at most one a second, so an all-intra
        source does not turn into an all-intra output."""
        if self._last_key is not None and t - self._last_key < KEYFRAME_MIN_SECONDS:
            return False
        self._last_key = t
        return True

    def write_packet(self, packet) -> None:
        """Mux a packet of a copied stream untouched."""
        out = self.copied.get(packet.stream.index)
        if out is None:
            return
        if not self.started:  # the header is written with the video stream; keep order until then
            self._pending_packets.append(packet)
            return
        packet.stream = out
        self.container.mux(packet)

    def close(self, complete: bool = True) -> Path:
        """Flush the encoder and move the file to its name (or the partial name). Returns it."""
        av = _av()
        try:
            if self.started:
                self._mux(self.stream.encode())
            self.container.close()
        except (OSError, av.error.FFmpegError) as e:  # a full disk, a vanished folder: no broken file is left
            discard(self.tmp)
            raise VideoError(explain(self.path, e, "finish")) from None
        if not self.started or (not complete and not self.frames):  # nothing was written: no file
            discard(self.tmp)
            raise VideoError(f"no frame could be decoded, so {self.path} was not written")
        dest = self.path if complete else partial_name(self.path)
        try:
            os.replace(self.tmp, dest)
        except OSError as e:
            discard(self.tmp)
            raise VideoError(explain(dest, e)) from None
        return dest

    def abort(self) -> None:
        """Drop the temporary file (an error before anything useful was written)."""
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - already failing; the temporary file goes either way
            pass
        discard(self.tmp)
