"""Stages joined by bounded queues: decode -> analyse -> infer -> temporal -> compose -> encode.

Each stage is a thread; memory stays flat for any length because every queue is bounded. The
policy follows the source:

* ``file``: back-pressure. A full queue blocks the stage before it, so nothing is ever dropped.
* ``live``: stay current. The first queue keeps only the newest picture (older ones are counted
  as dropped), and the network runs on one keyframe at a time, so no backlog can build.

Stopping (Ctrl-C, SIGTERM, --duration, an error) sets an Event: the source stops reading, sends
the end-of-stream marker, and every stage drains what it holds and passes the marker on, so the
sinks always see a clean end and can finalise their files.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from .colorizer import Colorizer, ab_to_chroma, inference_shape, luma_to_small_L
from .media.frames import Picture
from .temporal import ChromaTracker, KeyframePolicy, TemporalConfig


class Policy(Enum):
    FILE = "file"  # lose nothing
    LIVE = "live"  # stay current


class _End:
    """End-of-stream marker passed down the stages (not an exception: EOS is not a failure)."""


EOS = _End()


class LatestQueue:
    """A one-slot queue for live sources: a new picture replaces one not yet taken (counted)."""

    def __init__(self):
        self._items: deque = deque()
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item, timeout: float | None = None) -> None:
        with self._cond:
            if isinstance(item, Picture):
                while self._items and isinstance(self._items[-1], Picture):
                    self._items.pop()
                    self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    def get(self, timeout: float | None = None):
        with self._cond:
            if not self._cond.wait_for(lambda: self._items, timeout):
                raise queue.Empty
            return self._items.popleft()


@dataclass
class PipelineConfig:
    """How the pipeline runs; the colorizer and temporal options come from the command line."""

    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    batch: int = 1  # keyframes per network call (file policy); live always uses 1
    queue_size: int = 8
    compare: bool = False  # gray | colour side by side
    references: list = field(default_factory=list)  # reference.Reference: known colours of this view
    colour_frames: object = None  # colour_frames.ColourFrames: user-coloured frames of this video


@dataclass
class Stats:
    """What happened: counts, time per stage, capture-to-output latency."""

    frames_in: int = 0
    frames_out: int = 0
    keyframes: int = 0
    cuts: int = 0
    dropped: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    first_output: float | None = None  # when the first picture reached the sinks (time.monotonic)
    stage_seconds: dict = field(default_factory=dict)
    latencies: deque = field(default_factory=lambda: deque(maxlen=5000))  # seconds, most recent

    def latency_ms(self, q: float, recent: int | None = None) -> float | None:
        """Percentile ``q`` of the latencies kept, or of the last ``recent`` of them."""
        kept = list(self.latencies)
        if recent is not None:
            kept = kept[len(kept) - min(recent, len(kept)) :]
        return float(np.percentile(np.array(kept) * 1000.0, q)) if kept else None

    def summary(self) -> dict:
        elapsed = (self.finished or time.monotonic()) - self.started
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "keyframes": self.keyframes,
            "scene_cuts": self.cuts,
            "seconds": round(elapsed, 3),
            "fps": round(self.frames_out / elapsed, 2) if elapsed > 0 else 0.0,
            "first_output_s": _round3(self.first_output - self.started if self.first_output else None),
            "latency_p50_ms": _round(self.latency_ms(50)),
            "latency_p95_ms": _round(self.latency_ms(95)),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _round3(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


class _Stage(threading.Thread):
    """Takes items from ``inbox``, applies ``fn`` (item -> list of items), puts them in ``outbox``."""

    def __init__(self, name: str, fn, inbox, outbox, pipeline: Pipeline, flush=None):
        super().__init__(name=f"rtcolor-{name}", daemon=True)
        # Completion is an Event, not Thread.is_alive(): a join interrupted by Ctrl-C can leave
        # is_alive() wrongly False on CPython < 3.13, and the sinks must never be closed early.
        self.done = threading.Event()
        self.stage, self.fn, self.inbox, self.outbox, self.pipeline, self.flush = (
            name,
            fn,
            inbox,
            outbox,
            pipeline,
            flush,
        )

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self.done.set()

    def _loop(self) -> None:
        p = self.pipeline
        busy = 0.0
        while True:
            item = self.inbox.get()
            if item is EOS:
                break
            if p.error is not None:
                continue  # drain after a failure elsewhere
            t0 = time.perf_counter()
            try:
                outs = self.fn(item)
            except Exception as e:  # noqa: BLE001 - reported by Pipeline.run, never swallowed
                p.fail(self.stage, e)
                continue
            busy += time.perf_counter() - t0
            for out in outs:
                self.outbox.put(out)
        if self.flush is not None and p.error is None:
            try:
                for out in self.flush():
                    self.outbox.put(out)
            except Exception as e:  # noqa: BLE001
                p.fail(self.stage, e)
        p.stats.stage_seconds[self.stage] = p.stats.stage_seconds.get(self.stage, 0.0) + busy
        if self.outbox is not None:
            self.outbox.put(EOS)


class _Infer:
    """Runs the network on keyframes, ``batch`` at a time, keeping every item's order."""

    def __init__(self, colorizer: Colorizer, batch: int, max_pending: int):
        self.colorizer, self.batch, self.max_pending = colorizer, batch, max_pending
        self.pending: list = []
        self.keys = 0

    def __call__(self, item) -> list:
        if not self.pending and not (isinstance(item, Picture) and item.meta["key"]):
            return [item]  # nothing waits on a prediction: pass straight on
        self.pending.append(item)
        if isinstance(item, Picture) and item.meta["key"]:
            self.keys += 1
        if self.keys >= self.batch or len(self.pending) >= self.max_pending:
            return self.flush()
        return []

    def flush(self) -> list:
        keys = [p for p in self.pending if isinstance(p, Picture) and p.meta["key"]]
        by_shape: dict[tuple, list[Picture]] = {}
        for p in keys:
            by_shape.setdefault(p.meta["L"].shape, []).append(p)
        for group in by_shape.values():
            for p, ab in zip(group, self.colorizer.predict_small([p.meta["L"] for p in group]), strict=True):
                p.meta["ab_new"] = ab
        out, self.pending, self.keys = self.pending, [], 0
        return out


class Pipeline:
    """Runs a source through the colorizer into one or more sinks, on threads."""

    def __init__(self, source, sinks: list, colorizer: Colorizer, cfg: PipelineConfig, policy: Policy | None = None):
        self.source, self.sinks, self.colorizer, self.cfg = source, sinks, colorizer, cfg
        self.policy = policy or (Policy.LIVE if getattr(source, "live", False) else Policy.FILE)
        self.stats = Stats()
        self.stopping = threading.Event()
        self.error: tuple[str, BaseException] | None = None
        self._lock = threading.Lock()
        self._keys = KeyframePolicy(cfg.temporal)
        self._tracker = ChromaTracker(cfg.temporal)

    # -- plumbing --------------------------------------------------------------------------------

    def fail(self, stage: str, e: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = (stage, e)
        self.stopping.set()

    def stop(self) -> None:
        """Ask the source to stop; everything already read is still finished and written."""
        self.stopping.set()
        if hasattr(self.source, "stop"):
            self.source.stop()  # a live source may be waiting for a camera to come back

    # -- stages ------------------------------------------------------------------------------------

    def _read(self, outbox, done: threading.Event) -> None:
        try:
            for item in self.source:
                if isinstance(item, Picture):
                    self.stats.frames_in += 1
                outbox.put(item)
                if self.stopping.is_set():
                    break
        except Exception as e:  # noqa: BLE001
            self.fail("source", e)
        finally:
            outbox.put(EOS)
            done.set()

    def _analyse(self, item) -> list:
        if isinstance(item, Picture):
            shape = inference_shape(*item.y.shape, self.colorizer.size)
            lum = luma_to_small_L(item.y, item.full_range, shape)
            key, cut = self._keys.decide(lum)
            item.meta.update(L=lum, key=key, cut=cut)
            self.stats.keyframes += key
            self.stats.cuts += cut and item.index > 0
        return [item]

    def _temporal(self, item) -> list:
        if isinstance(item, Picture):
            m = item.meta
            if m["L"].shape != getattr(self._tracker.prev_L, "shape", m["L"].shape):
                self._tracker.reset()  # the source changed size (e.g. a camera reconnected)
            m["ab"] = self._tracker.step(m["L"], m.pop("ab_new", None), m["cut"])
            if self.cfg.references or self.cfg.colour_frames is not None:  # after the tracker: it
                m["ab"] = self._reference(item, m["L"], m["ab"])  # carries the network's own chroma
        return [item]

    def _reference(self, item: Picture, lum: np.ndarray, ab: np.ndarray) -> np.ndarray:
        from .color import luma_to_L_table
        from .reference import blend_references

        refs, shape, full_L = self.cfg.references, ab.shape[:2], None
        if not all(r.fitted(shape) for r in refs):  # once per view size: align to this camera
            full_L = luma_to_L_table(item.full_range)[item.y]
            for r in refs:
                if not r.fitted(shape):
                    r.fit(full_L, shape)
        if refs:
            ab = blend_references(refs, lum, ab)
        if self.cfg.colour_frames is not None:
            full_L = luma_to_L_table(item.full_range)[item.y] if full_L is None else full_L
            ab = self.cfg.colour_frames.apply(item.index, full_L, lum, ab)
        return ab

    def _compose(self, item) -> list:
        if isinstance(item, Picture):
            m = item.meta
            item.u, item.v = ab_to_chroma(m["L"], m["ab"], item.matrix, item.full_range, item.chroma_shape)
            if self.cfg.compare:
                neutral = np.full_like(item.u, 128)
                item.y = np.hstack([item.y, item.y])
                item.u, item.v = np.hstack([neutral, item.u]), np.hstack([neutral, item.v])
        return [item]

    def _write(self, item) -> list:
        if isinstance(item, Picture):
            for sink in self.sinks:
                sink.write(item)
            self.stats.frames_out += 1
            now = time.monotonic()
            if self.stats.first_output is None:
                self.stats.first_output = now
            self.stats.latencies.append(now - item.captured)
            item.meta.clear()
        else:
            for sink in self.sinks:
                if hasattr(sink, "write_packet"):
                    sink.write_packet(item)
        return []

    # -- running -----------------------------------------------------------------------------------

    def run(self, poll: float = 0.2, on_poll=None) -> Stats:
        """Run to the end of the source (or until ``stop``); returns the stats.

        A stage failure does not raise: it is in ``self.error`` for the caller to report. Ctrl-C
        (KeyboardInterrupt) propagates, but only after every stage has drained, so the sinks can
        always be finalised."""
        live = self.policy is Policy.LIVE
        size = self.cfg.queue_size if not live else 1  # live: hold a frame, never a queue of them
        first = LatestQueue() if live else queue.Queue(self.cfg.queue_size)
        queues = [first] + [queue.Queue(size) for _ in range(4)]
        batch = 1 if live else max(1, self.cfg.batch)
        infer = _Infer(self.colorizer, batch, max_pending=batch * self.cfg.temporal.keyframe_interval + 16)
        stages = [
            _Stage("analyse", self._analyse, queues[0], queues[1], self),
            _Stage("infer", infer, queues[1], queues[2], self, flush=infer.flush),
            _Stage("temporal", self._temporal, queues[2], queues[3], self),
            _Stage("compose", self._compose, queues[3], queues[4], self),
            _Stage("encode", self._write, queues[4], None, self),
        ]
        reader_done = threading.Event()
        reader = threading.Thread(target=self._read, args=(queues[0], reader_done), name="rtcolor-source", daemon=True)
        reader.start()
        for s in stages:
            s.start()
        try:
            while not stages[-1].done.wait(poll):  # short waits keep the main thread responsive to Ctrl-C
                if live:
                    self.stats.dropped = first.dropped
                if on_poll is not None:
                    on_poll(self)
            if on_poll is not None:
                on_poll(self)  # the last frames too: a progress bar ends at 30/30, not 29/30
        finally:
            self.stop()
            for done in [reader_done, *(s.done for s in stages)]:
                while True:  # the sinks must be finished before anyone closes them
                    try:
                        if done.wait(poll):
                            break
                    except KeyboardInterrupt:
                        pass  # a second Ctrl-C while draining: finish draining first
            if live:
                self.stats.dropped = first.dropped
            self.stats.finished = time.monotonic()
        return self.stats


def summarise(problems: list[str]) -> str:
    """The first problem and how many more: one line, however damaged the file."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


def colorize_file(
    src,
    dest,
    colorizer: Colorizer,
    cfg: PipelineConfig,
    codec: str = "libx264",
    crf: int = 18,
    preset: str = "veryfast",
    on_poll=None,
) -> dict:
    """Colorize one video file into ``dest`` (file policy). Returns the summary, including
    ``output`` (where it went), ``complete`` and ``problems``. KeyboardInterrupt is re-raised after
    the partial output has been finalised (its path is in the exception's ``partial`` attribute)."""
    from .media.video import FileSink, FileSource

    source = FileSource(src)
    try:
        sink = FileSink(dest, source=source, codec=codec, crf=crf, preset=preset)
    except Exception:
        source.close()
        raise
    pipe = Pipeline(source, [sink], colorizer, cfg, Policy.FILE)
    interrupted = False
    try:
        pipe.run(on_poll=on_poll)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        source.close()
    problems = list(source.problems)
    if sink.out_of_order:
        problems.append(f"{sink.out_of_order} frames whose timestamps went backwards were left out")
    if pipe.error is not None:
        stage, e = pipe.error
        problems.append(f"{stage} stage failed: {e.__class__.__name__}: {e}")
    complete = not interrupted and not problems
    try:
        out = sink.close(complete=complete)
    except Exception as e:
        sink.abort()
        if problems:  # the reason nothing was written is the failure, not an empty input
            from .media.video import VideoError

            raise VideoError(f"{src}: {summarise(problems)}") from e
        raise
    summary = {"input": str(src), "output": str(out), "complete": complete, "problems": problems}
    summary["warnings"] = list(source.warnings)
    summary.update(pipe.stats.summary())
    if interrupted:
        e = KeyboardInterrupt()
        e.partial = summary
        raise e
    return summary
