"""Long videos cut in time: plan segments at keyframes, colorize one with a warm-up, join the parts.

This is what lets several machines share one film (``cluster.py`` runs the segments as Ray tasks),
and it needs no Ray: every piece here runs and is tested on one machine.

* **Plan**: one demux pass (packets only, nothing decoded) finds the keyframes; a new segment
  starts at the first keyframe at least ``segment_seconds`` after the previous start, so each
  segment can be decoded on its own.
* **Warm-up**: the temporal state (which frames are keyframes, chroma carried along the flow,
  smoothing) depends on the frames before. A segment's worker therefore starts decoding at a
  keyframe ``warmup_seconds`` earlier and runs those frames through the pipeline too, but only the
  segment's own frames reach the encoder. The chroma at the seam then comes from the same
  converged state a single run would have had, so there is no visible jump.
* **Parts**: each part is the segment's own frames only (video, no audio), with timestamps moved to
  start at 0; its first frame is an IDR frame, so a part is decodable alone. The part's encoder
  also encodes the warm-up frames and a lead-out after the segment without writing them, so its
  rate control starts and ends as one run's would; with the output's keyframes on the source's,
  a split run's file is the single run's GOP for GOP (bit for bit where the warm-up reaches
  back to the file's start and x264 itself repeats: at some widths, 160 among them, it reads
  bytes nobody wrote, and one input encoded twice can differ by 2-3 codes in a GOP; the
  probe and its runs are in the experiment log), and a seam looks like any keyframe of a single run. MP4
  parts start at 0 because the MP4 edit list stores a non-zero start in milliseconds, which would
  round the source's exact timestamps.
* **Join**: the parts' packets are copied (never re-encoded) in order, each shifted back to its
  source time, and interleaved with the source's audio and subtitle packets, copied once; the
  container and stream metadata come from the source. Written under a temporary name, renamed
  when complete.
"""

from __future__ import annotations

import heapq
import os
from bisect import bisect_left
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..media.outputs import discard, explain, temp_path

# The video and pipeline modules (FFmpeg, OpenCV) are imported where used: the CLI reads this
# module's defaults for its help text, and `rtcolor --help` should not load a video stack.

# Enough for the temporal state to converge: each keyframe keeps ~0.6 of the carried chroma, so
# the difference from a single run shrinks ~0.6x per keyframe. On a generated 25 fps clip, 1 s of
# warm-up already matched a single run at >= 58 dB chroma PSNR on every frame (lossless encode).
DEFAULT_WARMUP_SECONDS = 2.0
DEFAULT_SEGMENT_SECONDS = 300.0  # 5 minutes: a 2-hour film becomes 24 tasks; warm-up costs < 1%
# Frames after a segment's end that its encoder still sees (and does not write): x264's rate
# control looks ahead (10 frames at veryfast, 40 at medium) and plans the last frames of a part
# from what follows, as it would in one run; without them a part's last frames were coded quieter
# and the IDR of the next part stood out. The first of them is an IDR, so nothing written needs them.
LEADOUT_FRAMES = 40
PART_SUFFIX = ".mp4"  # exact timestamps for any codec the sink writes (see the module docstring)


@dataclass(frozen=True)
class Segment:
    """Frames with ``start <= pts < end`` (source video time base; None: the file's start / end),
    decoded from the keyframe at ``warmup_from`` (None: the file's start)."""

    index: int
    start: int | None
    end: int | None
    warmup_from: int | None
    frames: int  # own frames (packets counted by the plan; the header's estimate for one segment)
    time_base: Fraction
    warmup_index: int = 0  # the file's frame number at ``warmup_from``

    @property
    def start_seconds(self) -> float:
        return float((self.start or 0) * self.time_base)


def plan_segments(
    path: str | Path,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    warmup_seconds: float = DEFAULT_WARMUP_SECONDS,
) -> list[Segment]:
    """Cut ``path`` at keyframes into segments of at least ``segment_seconds`` (the last may be
    shorter). A file no longer than ``segment_seconds`` is one segment, without a demux pass."""
    if segment_seconds <= 0 or warmup_seconds < 0:
        raise ValueError(f"segment length {segment_seconds} must be > 0 and warm-up {warmup_seconds} >= 0")
    from ..media.video import VideoError, open_input

    container = open_input(path)
    try:
        video = container.streams.video[0]
        tb = video.time_base
        duration = float(container.duration) / 1e6 if container.duration else None
        if duration is not None and duration <= segment_seconds:
            frames = video.frames or int(round(duration * float(video.average_rate or 0)))
            return [Segment(0, None, None, None, frames, tb)]
        pts, keys = [], []
        for packet in container.demux(video):
            if packet.pts is None:
                continue  # the demuxer's final empty packet
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
    finally:
        container.close()
    if not pts:
        raise VideoError(f"{path}: has no video packets")
    pts.sort()
    keys.sort()
    step, warm = segment_seconds / tb, warmup_seconds / tb  # in time-base units
    starts = [pts[0]]
    for k in keys:
        if k - starts[-1] >= step:
            starts.append(k)
    segments = []
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        count = (bisect_left(pts, end) if end is not None else len(pts)) - bisect_left(pts, s)
        before = [k for k in keys if k <= s - warm]
        warmup = None if i == 0 else (before[-1] if before else pts[0])
        first = 0 if warmup is None else bisect_left(pts, warmup)
        segments.append(Segment(i, None if i == 0 else s, end, warmup, count, tb, first))
    return segments


class SegmentSource:
    """A FileSource restricted to [warm-up, segment end): seeks to the warm-up keyframe and stops
    at the first picture at or after the end. Only pictures pass (a part holds no audio).

    ``keyframe_interval``: the first few decoded frames are held back so that the pipeline starts
    on a multiple of K: its keyframes then fall on the frames a single run would pick (K apart
    from frame 0, until a scene cut or a still scene moves them in both runs alike)."""

    def __init__(self, path: str | Path, segment: Segment, keyframe_interval: int = 1, leadout: int = 0):
        from ..media.decode import FileSource
        from ..media.frames import Policy

        self.policy = Policy.FILE
        self.inner = FileSource(path)
        self.segment = segment
        self.skip = -segment.warmup_index % max(1, keyframe_interval)
        self.info = self.inner.info
        self.problems = self.inner.problems
        self.warnings = self.inner.warnings
        self.done = False
        self.leadout = leadout  # frames passed on after the end (OwnFrames has them encoded, not written)
        if segment.warmup_from is not None:
            self.inner.container.seek(segment.warmup_from, stream=self.inner.video, backward=True, any_frame=False)

    def read(self, timeout: float = 1.0):
        from ..media.frames import Read, Status

        while not self.done:
            r = self.inner.read(timeout)
            if r.status is Status.PACKET:
                continue  # an audio or subtitle packet: copied once, from the source, at the join
            if r.status is not Status.FRAME:
                if r.status is Status.END:
                    self._end()
                return r
            if self.skip:
                self.skip -= 1
                continue
            end, pic = self.segment.end, r.item
            if end is not None and pic.pts is not None and pic.pts >= end:
                if self.leadout <= 0:
                    break  # the next segment's frames are its worker's to write
                self.leadout -= 1
            return r
        self._end()
        return Read(Status.END)

    def _end(self) -> None:
        # FileSource compares the frames it decoded with the container's count for the whole file;
        # a segment that started later decodes fewer by design. The join checks the real total.
        self.done = True
        if self.segment.index > 0:
            self.problems[:] = [p for p in self.problems if not p.startswith("decoded ")]

    def stop(self) -> None:
        self.done = True

    def close(self) -> None:
        self.inner.close()


class OwnFrames:
    """The sink of one segment: its own frames are written with timestamps from 0 in the part.

    The warm-up frames before them and the lead-out frames after them are encoded too but not
    written (the sink's ``keep_from`` / ``stop_at``): x264's rate control carries a history of the
    frames before (its complexity average) and looks ahead at those after, so a part encoded alone
    coded its first and last frames unlike one run, and the seam showed. The first own frame and the
    first lead-out frame are IDRs, so nothing written refers to a frame that is not."""

    def __init__(self, sink, segment: Segment):
        self.sink, self.segment = sink, segment
        self.first_pts: int | None = None  # source pts of the first own frame: the join's offset
        self.frames = 0
        if segment.start is not None:  # frames before it are warm-up
            sink.keep_from = Fraction(0)
            self._rebase(segment.start)

    def _rebase(self, first_pts: int) -> None:
        self.first_pts = first_pts
        if self.segment.end is not None:
            self.sink.stop_at = (self.segment.end - first_pts) * self.segment.time_base

    def write(self, pic) -> None:
        if self.first_pts is None:  # the first segment starts at its first frame
            self._rebase(pic.pts or 0)
        start, end = self.segment.start, self.segment.end
        own = pic.pts is None or ((start is None or pic.pts >= start) and (end is None or pic.pts < end))
        if pic.pts is not None:
            pic.pts -= self.first_pts
        self.sink.write(pic)
        self.frames += own


def part_path(parts_dir: Path, segment: Segment) -> Path:
    return Path(parts_dir) / f"{segment.index:05d}{PART_SUFFIX}"


def colorize_segment(
    src: str | Path,
    part: str | Path,
    segment: Segment,
    colorizer,
    cfg,
    encoder=None,
    on_frames=None,
) -> dict:
    """Colorize one segment of ``src`` into the part file ``part`` (video only). Returns a summary
    with ``frames`` (own frames written) and ``first_pts`` (their first source pts). Raises
    VideoError when frames were lost; the part then does not exist (never half a part)."""
    from ..media.frames import Policy
    from ..media.video import EncoderSettings, FileSink, VideoError
    from .pipeline import summarize
    from .stages import colorize_pipeline

    source = SegmentSource(src, segment, cfg.temporal.keyframe_interval, LEADOUT_FRAMES)
    try:
        sink = FileSink(part, source=None, rate=source.info.rate, **(encoder or EncoderSettings()).sink_options())
    except Exception:
        source.close()
        raise
    own = OwnFrames(sink, segment)
    poll = None if on_frames is None else (lambda p: on_frames(own.frames))
    try:
        result = colorize_pipeline(colorizer, [own], cfg, Policy.FILE).run(source, on_poll=poll)
        if result.outcome.value == "interrupted":
            raise KeyboardInterrupt
    except BaseException:  # Ctrl-C or a cancelled task: no half part is left behind
        source.close()
        sink.abort()
        raise
    source.close()
    problems = list(source.problems)
    if result.failure is not None:
        problems.append(result.failure)
    if sink.out_of_order:
        problems.append(f"{sink.out_of_order} frames whose timestamps went backwards were left out")
    if problems:
        sink.abort()
        raise VideoError(f"{src}: segment {segment.index + 1} at {segment.start_seconds:.1f}s: {summarize(problems)}")
    sink.close(complete=True)
    summary = {"segment": segment.index, "frames": own.frames, "first_pts": own.first_pts}
    summary.update(result.stats.summary())
    return summary


def _packets(container, streams, offset: Fraction = Fraction(0)):
    """(time in seconds, packet) for each packet with a timestamp, shifted by ``offset`` seconds."""
    from ..media.video import VideoError

    for packet in container.demux(*streams):
        if packet.dts is None and packet.pts is None:
            continue  # the demuxer's final empty packet
        tb = packet.time_base
        shift = offset / tb
        if shift.denominator != 1:
            raise VideoError(f"offset {offset} s is not a whole number of ticks of {tb}; cannot join exactly")
        if shift:
            packet.pts = None if packet.pts is None else packet.pts + int(shift)
            packet.dts = None if packet.dts is None else packet.dts + int(shift)
        t = packet.dts if packet.dts is not None else packet.pts
        yield float(t * tb), packet


def join_parts(src: str | Path, parts: list[tuple[Path, int]], dest: str | Path, frames: int | None = None) -> Path:
    """Join ``parts`` ((path, source pts of its first frame), in order) into ``dest`` by stream copy,
    with the source's audio/subtitle packets and metadata. ``frames``: the total the plan counted
    (checked). Written under a temporary name and renamed; returns ``dest``."""
    import av

    from ..media.video import VideoError, open_input

    dest = Path(dest)
    tmp = temp_path(dest, f"rtcolor-join-{os.getpid()}")
    source = open_input(src)
    opened = [av.open(str(p)) for p, _ in parts]
    try:
        vs = source.streams.video[0]
        first = opened[0].streams.video[0]
        for i, c in enumerate(opened[1:], 2):  # one stream needs one set of codec headers
            if bytes(c.streams.video[0].codec_context.extradata or b"") != bytes(first.codec_context.extradata or b""):
                raise VideoError(f"{dest}: part {i} was encoded with other settings than part 1; cannot join")
        rotation = _rotation(parts[0][0])
        try:
            out = av.open(str(tmp), "w")
        except (av.error.FFmpegError, OSError) as e:
            raise VideoError(explain(dest, e)) from None
        try:
            written = _mux(out, source, vs, first, opened, parts, rotation)
        except BaseException:
            out.close()
            discard(tmp)
            raise
        out.close()
    finally:
        for c in opened:
            c.close()
        source.close()
    if frames is not None and written != frames:
        discard(tmp)
        raise VideoError(f"{src}: the parts hold {written} frames, the source {frames}; not joined")
    try:
        os.replace(tmp, dest)
    except OSError as e:
        discard(tmp)
        raise VideoError(explain(dest, e)) from None
    return dest


def _rotation(part: Path) -> int:
    """The display rotation the part's encoder was given (from the source's first frame)."""
    import av

    with av.open(str(part)) as c:
        for frame in c.decode(video=0):
            return int(getattr(frame, "rotation", 0) or 0)
    return 0


def _mux(out, source, vs, first, opened, parts, rotation: int) -> int:
    out.metadata.update(source.metadata)
    video = out.add_stream_from_template(first)
    video.metadata.update(vs.metadata)
    if rotation:
        video.set_display_rotation(rotation)
    copies = [s for s in source.streams if s.type in ("audio", "subtitle")]
    mapped = {}
    for s in copies:
        o = out.add_stream_from_template(s)
        o.metadata.update(s.metadata)
        mapped[s.index] = o
    tb = vs.time_base

    def video_packets():
        for c, (_, first_pts) in zip(opened, parts, strict=True):
            yield from _packets(c, [c.streams.video[0]], Fraction(first_pts) * tb)

    streams = [video_packets()]
    if copies:
        streams.append(_packets(source, copies))
    written = 0
    # heapq.merge keeps each input's order and interleaves by time, so the muxer never has to
    # buffer a whole part's video before the audio that plays with it.
    for _, packet in heapq.merge(*streams, key=lambda tp: tp[0]):
        is_video = packet.stream.type == "video"
        packet.stream = video if is_video else mapped[packet.stream.index]
        out.mux(packet)
        written += is_video
    return written
