"""The colorizing stages: analyze -> infer -> temporal -> compose -> encode, run by ``pipeline``.
(A live source runs the network beside the stream instead: ``live.LiveTemporal`` takes the place
of infer and temporal.)

Each frame travels as a ``Work`` item: the decoded Picture and what the stages found about it
(its small L, whether it is a keyframe or a scene cut, the network's ab, the chroma after the
temporal step). Only the first stage sees a bare Picture and only the last one writes it.

``colorize_file`` is the ``colorize`` command's job: a file source, this stage set, a file sink.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..media.frames import Picture, Policy
from ..runtime.colorizer import Colorizer, ab_to_chroma, inference_shape, luma_to_small_L
from .live import LiveTemporal
from .pipeline import Outcome, Passenger, Pipeline, RunResult, Stage, summarize
from .temporal import KeyframePolicy, TemporalConfig, make_tracker

if TYPE_CHECKING:
    from ..guidance.colored_frames import ColorFrames
    from ..guidance.hint_tracks import VideoHints
    from ..guidance.reference import Reference
    from ..media.video import EncoderSettings


@dataclass(frozen=True)
class PipelineConfig:
    """How the colorizing pipeline runs; the colorizer and temporal options come from the command
    line. Frozen: a job that needs another setting (this video's colored frames, the batch its
    device wants) runs with a copy (``dataclasses.replace``), never by changing a shared one."""

    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    batch: int = 1  # keyframes per network call (file policy); 0: chosen by the device; live always uses 1
    queue_size: int = 8
    compare: bool = False  # gray | color side by side
    references: tuple[Reference, ...] = ()  # known colors of this view
    color_frames: ColorFrames | None = None  # user-colored frames of this video
    hints: VideoHints | None = None  # the user's color hints, for the network on keyframes
    # Live policy: False runs the network beside the stream (video/live.py: no frame waits for it);
    # True makes every keyframe wait for its prediction, as the file policy always does.
    wait_for_keyframes: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "references", tuple(self.references))  # a list given is kept as a tuple

    def for_device(self, device: str) -> PipelineConfig:
        """With batch 0: 8 keyframes a call on a GPU (fewer, larger calls), 1 on a CPU."""
        if self.batch > 0:
            return self
        return replace(self, batch=8 if str(device).startswith("cuda") else 1)


@dataclass
class Work:
    """One frame on its way through the colorizing stages."""

    pic: Picture
    lum: np.ndarray  # Lab L at the inference size
    key: bool  # the network runs on this frame
    cut: bool  # a scene starts here (temporal state is reset)
    ab_new: np.ndarray | None = None  # the network's normalized ab (keyframes), (h, w, 2)
    ab: np.ndarray | None = None  # this frame's ab after the temporal step
    hints: tuple = ()  # hints.Hint for the network on this keyframe (where they are on this frame)

    @property
    def captured(self) -> float:
        return self.pic.captured


class Analyze(Stage):
    """Picture -> Work: the small L the network and the temporal step see, keyframe and cut."""

    name = "analyze"

    def __init__(self, colorizer: Colorizer, cfg: TemporalConfig):
        self.size, self.keys = colorizer.size, KeyframePolicy(cfg)

    def bind(self, stats) -> None:
        super().bind(stats)
        stats.count("keyframes", 0)
        stats.count("scene_cuts", 0)

    def __call__(self, pic: Picture) -> list[Work]:
        lum = luma_to_small_L(pic.y, pic.full_range, inference_shape(*pic.y.shape, self.size))
        key, cut = self.keys.decide(lum)
        self.stats.count("keyframes", key)
        self.stats.count("scene_cuts", cut and pic.index > 0)
        return [Work(pic, lum, key, cut)]


class Guide(Stage):
    """Keyframe -> the user's hints that hold on it (hint_tracks.py: frame hints followed through
    their shot, frame-less ones gated by how much the scene still looks as it did)."""

    name = "hints"
    needs_every_item = True  # live: before the network, on the sequence analyze decided keyframes on

    def __init__(self, hints):
        self.hints = hints

    def bind(self, stats) -> None:
        super().bind(stats)
        stats.count("hinted_keyframes", 0)

    def __call__(self, w: Work) -> list[Work]:
        if w.key:
            w.hints = self.hints.for_frame(w.pic.index, w.lum)
            self.stats.count("hinted_keyframes", bool(w.hints))
        return [w]


class Infer(Stage):
    """Runs the network on keyframes, ``batch`` at a time, keeping every item's order."""

    name = "infer"
    needs_every_item = True  # the keyframes and cuts were decided on the sequence analyze saw

    def __init__(self, colorizer: Colorizer, batch: int, max_pending: int):
        self.colorizer, self.batch, self.max_pending = colorizer, batch, max_pending
        self.pending: list = []  # Work and Passengers, in order, waiting on the keys' predictions
        self.keys: list[Work] = []

    def __call__(self, w: Work) -> list:
        if not self.pending and not w.key:
            return [w]  # nothing waits on a prediction: pass straight on
        self.pending.append(w)
        if w.key:
            self.keys.append(w)
        if len(self.keys) >= self.batch or len(self.pending) >= self.max_pending:
            return self.flush()
        return []

    def passenger(self, item: Passenger) -> list:
        if not self.pending:
            return [item]
        self.pending.append(item)  # behind the frames it came after
        return []

    def flush(self) -> list:
        by_shape: dict[tuple, list[Work]] = {}
        for w in self.keys:
            by_shape.setdefault(w.lum.shape, []).append(w)
        for group in by_shape.values():
            lums = [w.lum for w in group]
            if any(w.hints for w in group):
                # patch sizes are in source pixels: the frames of one small shape share their source's
                abs_ = self.colorizer.predict_small(lums, [w.hints for w in group], group[0].pic.y.shape)
            else:
                abs_ = self.colorizer.predict_small(lums)
            for w, ab in zip(group, abs_, strict=True):
                w.ab_new = ab
        out, self.pending, self.keys = self.pending, [], []
        return out


class Temporal(Stage):
    """Carries chroma between keyframes and smooths it (the method the config names)."""

    name = "temporal"
    needs_every_item = True  # a dropped cut would carry the old scene's chroma into the new one

    def __init__(self, cfg: TemporalConfig):
        self.tracker = make_tracker(cfg)

    def __call__(self, w: Work) -> list[Work]:
        w.ab = self.tracker.step(w.lum, w.ab_new, w.cut)
        w.ab_new = None
        return [w]


class KnownColors(Stage):
    """The colors the user gave, blended in where they apply (reference.py): pictures of this view
    (aligned once per view size), and colored frames of this video within their shots. After the
    temporal step, which carries the network's own chroma."""

    name = "reference"

    def __init__(self, references: list, color_frames=None):
        self.references, self.color_frames = references, color_frames

    def __call__(self, w: Work) -> list[Work]:
        from ..color import luma_to_L_table
        from ..guidance.reference import blend_references, fit_references

        shape, full = w.ab.shape[:2], None

        def full_L():  # the frame's full-resolution L, made once and only when needed
            nonlocal full
            if full is None:
                full = luma_to_L_table(w.pic.full_range)[w.pic.y]
            return full

        if self.references:
            fit_references(self.references, shape, full_L)  # once per view size: align to this camera
            w.ab = blend_references(self.references, w.lum, w.ab)
        if self.color_frames is not None:
            w.ab = self.color_frames.apply(w.pic.index, full_L(), w.lum, w.ab)
        return [w]


class Compose(Stage):
    """The chroma planes of the picture from its small L and ab; its luma is never touched."""

    name = "compose"

    def __init__(self, compare: bool = False):
        self.compare = compare

    def __call__(self, w: Work) -> list[Work]:
        pic = w.pic
        pic.u, pic.v = ab_to_chroma(w.lum, w.ab, pic.matrix, pic.full_range, pic.chroma_shape)
        if self.compare:
            neutral = np.full_like(pic.u, 128)
            pic.y = np.hstack([pic.y, pic.y])
            pic.u, pic.v = np.hstack([neutral, pic.u]), np.hstack([neutral, pic.v])
        return [w]


class Encode(Stage):
    """Hands each colorized picture to every sink (and a file's other packets to those that mux them)."""

    name = "encode"

    def __init__(self, sinks: list):
        self.sinks = sinks

    def __call__(self, w: Work) -> list[Work]:
        for sink in self.sinks:
            sink.write(w.pic)
        w.lum = w.ab = None  # the frame is done: free its arrays before the runner lets go of it
        return [w]

    def passenger(self, item: Passenger) -> list:
        for sink in self.sinks:
            if hasattr(sink, "write_packet"):
                sink.write_packet(item.payload)
        return []


def colorizing_stages(colorizer: Colorizer, sinks: list, cfg: PipelineConfig, policy: Policy) -> list[Stage]:
    """The stage set for ``Pipeline``. A file waits for every keyframe (exact, in order); a live
    source runs the network beside the stream (``live.LiveTemporal``) unless told to wait, and
    then sends one keyframe per network call."""
    batch = 1 if policy is Policy.LIVE else max(1, cfg.batch)
    if policy is Policy.LIVE and not cfg.wait_for_keyframes:
        chroma: list[Stage] = [LiveTemporal(colorizer, cfg.temporal)]
    else:
        pending = batch * cfg.temporal.keyframe_interval + 16
        chroma = [Infer(colorizer, batch, max_pending=pending), Temporal(cfg.temporal)]
    return [
        Analyze(colorizer, cfg.temporal),
        *([Guide(cfg.hints)] if cfg.hints is not None else []),
        *chroma,
        *([KnownColors(cfg.references, cfg.color_frames)] if cfg.references or cfg.color_frames else []),
        Compose(cfg.compare),
        Encode(sinks),
    ]


def colorize_pipeline(colorizer: Colorizer, sinks: list, cfg: PipelineConfig, policy: Policy) -> Pipeline:
    """A runner with the colorizing stages, writing into ``sinks``."""
    return Pipeline(colorizing_stages(colorizer, sinks, cfg, policy), policy, cfg.queue_size)


@contextmanager
def _no_shield(dest: str):
    yield


def colorize_file(
    src,
    dest,
    colorizer: Colorizer,
    cfg: PipelineConfig,
    encoder: EncoderSettings | None = None,
    on_poll=None,
    finishing=None,
) -> RunResult:
    """Colorize one video file into ``dest`` (file policy): every frame, the other streams copied.
    The result says whether it is complete, interrupted (Ctrl-C: the partial output is finalized
    and named in ``output``) or failed; an input or output that cannot be opened raises VideoError.
    Interrupted before its first frame, it leaves no file and raises KeyboardInterrupt.
    ``finishing(dest)``, a context manager, is held while the output is finalized (the CLI's makes
    a further Ctrl-C wait for it)."""
    from ..media.sinks import open_sink
    from ..media.sources import open_source
    from ..media.video import EncoderSettings, VideoError

    source = open_source(src, Policy.FILE, kind="file", packets=True)
    try:
        sink = open_sink(dest, source=source, **(encoder or EncoderSettings()).sink_options())
    except Exception:
        source.close()
        raise
    try:
        result = colorize_pipeline(colorizer, [sink], cfg, Policy.FILE).run(source, on_poll=on_poll)
    except BaseException:  # Ctrl-C before the run began: its temporary file goes
        sink.abort()
        raise
    finally:
        source.close()
    result.input, result.warnings = str(src), list(source.warnings)
    result.problems = list(source.problems)
    if sink.out_of_order:
        result.problems.append(f"{sink.out_of_order} frames whose timestamps went backwards were left out")
    if result.failure is not None:
        result.problems.append(result.failure)
    try:
        with (finishing or _no_shield)(str(dest)):
            result.output = sink.close(complete=result.complete)
    except BaseException as e:
        sink.abort()
        if not isinstance(e, Exception):
            raise  # abandoned while being finalized (a third Ctrl-C): nothing is kept
        if result.problems:  # the reason nothing was written is the failure, not an empty input
            raise VideoError(f"{src}: {summarize(result.problems)}") from e
        if result.outcome is Outcome.INTERRUPTED:
            raise KeyboardInterrupt from None  # interrupted before the first frame: nothing to keep
        raise
    return result


__all__ = ["PipelineConfig", "Work", "colorize_file", "colorize_pipeline", "colorizing_stages"]
