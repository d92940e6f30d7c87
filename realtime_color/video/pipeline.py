"""The runner: a source and stages joined by bounded queues, each stage a thread. It knows threads,
queues, the policies and how to stop; nothing about color (the colorizing stages are in ``stages``).

Memory stays flat for any length because every queue is bounded. The policy follows the source:

* ``file``: back-pressure. A full queue blocks the stage before it, so nothing is ever dropped.
* ``live``: stay current. The first queue keeps only the newest item (older ones are counted as
  dropped), and so does the queue in front of every later stage that does not need every item
  (``Stage.needs_every_item``: one that follows a sequence, like the temporal step, gets a
  one-item queue instead), so no backlog can build: whichever stage is the slowest (the network
  when keyframes are waited for, the encoder on a busy CPU) takes the newest item when it is free.

Stopping (Ctrl-C, SIGTERM, --duration, an error) sets an Event: the source stops reading, sends
the end-of-stream marker, and every stage drains what it holds and passes the marker on, so the
sinks always see a clean end and can finalize their files. The run ends in a ``RunResult``
(complete, interrupted or failed), never in an exception: a stage that fails is reported there,
and Ctrl-C is answered once every stage has drained.

A stage is a ``Stage``: ``item -> list of items`` for the next one, and ``flush()`` at the end.
What the items are is the stages' business. Packets that a file source hands over only to be
passed along (audio, subtitles) travel between the frames as ``Passenger``s, in order; a stage
sees them only through ``passenger()``, which hands them straight on unless it overrides it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from ..media.frames import Policy, Status
from ..threads import name_native_thread

__all__ = ["EOS", "Outcome", "Passenger", "Pipeline", "Policy", "RunResult", "Stage", "Stats", "summarize"]


class _End:
    """End-of-stream marker passed down the stages (not an exception: EOS is not a failure)."""


EOS = _End()


@dataclass(frozen=True)
class Passenger:
    """An item that rides through the stages untouched, in order (a file's audio packet)."""

    payload: object


class Stage:
    """One step of a pipeline. Subclasses override ``__call__`` (or pass ``fn``); ``flush`` hands
    over what the stage still holds at the end of the input; ``passenger`` sees Passengers."""

    name = "stage"
    fn = None
    stats: Stats | None = None
    needs_every_item = False  # live: True when the stage follows a sequence (no item may be dropped before it)

    def __init__(self, name: str | None = None, fn=None):
        if name is not None:
            self.name = name
        self.fn = fn

    def __call__(self, item) -> list:
        return self.fn(item) if self.fn is not None else [item]

    def passenger(self, item: Passenger) -> list:
        return [item]  # overridden by a stage that holds items back (order) or writes them (a sink)

    def flush(self) -> list:
        return []

    def bind(self, stats: Stats) -> None:
        """Called once before the run: where the stage may count things (``stats.count``)."""
        self.stats = stats


class LatestQueue:
    """A one-slot queue for live sources: a new item replaces one not yet taken (counted)."""

    def __init__(self):
        self._items: deque = deque()
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item, timeout: float | None = None) -> None:
        with self._cond:
            if item is not EOS and not isinstance(item, Passenger):
                while self._items and self._items[-1] is not EOS and not isinstance(self._items[-1], Passenger):
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
class Stats:
    """What happened: counts, time per stage, capture-to-output latency."""

    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    first_output: float | None = None  # when the first item left the last stage (time.monotonic)
    stage_seconds: dict = field(default_factory=dict)
    latencies: deque = field(default_factory=lambda: deque(maxlen=5000))  # seconds, most recent
    counts: dict = field(default_factory=dict)  # what the stages counted (keyframes, scene cuts, ...)
    samples: dict = field(default_factory=dict)  # what the stages measured per item (name -> recent values)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(n)

    def sample(self, name: str, value: float) -> None:
        """One measurement of ``name`` (a keyframe's age, a queue's length); summarized as p50/p95/max."""
        self.samples.setdefault(name, deque(maxlen=5000)).append(float(value))

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
            **self.counts,
            "seconds": round(elapsed, 3),
            "fps": round(self.frames_out / elapsed, 2) if elapsed > 0 else 0.0,
            "first_output_s": _round(self.first_output - self.started if self.first_output else None, 3),
            "latency_p50_ms": _round(self.latency_ms(50)),
            "latency_p95_ms": _round(self.latency_ms(95)),
            "latency_p99_ms": _round(self.latency_ms(99)),
            "latency_max_ms": _round(max(self.latencies) * 1000.0 if self.latencies else None),
            **{name: _distribution(values) for name, values in self.samples.items()},
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


def _distribution(values) -> dict:
    kept = np.array(list(values), np.float64)  # list(): one step under the GIL while a stage appends
    if not kept.size:
        return {"n": 0}
    p50, p95, top = (round(float(v), 2) for v in (*np.percentile(kept, [50, 95]), kept.max()))
    return {"n": int(kept.size), "p50": p50, "p95": p95, "max": top}


class Outcome(Enum):
    COMPLETE = "complete"  # the source ended, or the run was stopped as asked (--duration, q)
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGTERM: what was read is finished and written
    FAILED = "failed"  # a stage failed; the items after the failure were drained, not processed


@dataclass
class RunResult:
    """How a run ended. The runner fills outcome, stats and failure; the job that ran it adds
    where its output went (the partial name when it is not complete), the input's problems
    (frames lost) and warnings."""

    outcome: Outcome
    stats: Stats
    failure: str | None = None  # one line: "infer stage failed: ValueError: ..."
    source_error: str | None = None  # a source that failed instead of ending
    input: str | None = None
    output: Path | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every frame of the input made it out."""
        return self.outcome is Outcome.COMPLETE and not self.problems

    def summary(self) -> dict:
        out = {"input": self.input, "output": None if self.output is None else str(self.output)}
        out.update(complete=self.complete, outcome=self.outcome.value, problems=list(self.problems))
        out["warnings"] = list(self.warnings)
        return {**out, **self.stats.summary()}


class _Thread(threading.Thread):
    """Runs one stage: takes items from ``inbox``, puts what the stage returns in ``outbox``."""

    def __init__(self, stage: Stage, inbox, outbox, pipeline: Pipeline, last: bool):
        super().__init__(name=f"rtcolor-{stage.name}", daemon=True)
        # Completion is an Event, not Thread.is_alive(): a join interrupted by Ctrl-C can leave
        # is_alive() wrongly False on CPython < 3.13, and the sinks must never be closed early.
        self.done = threading.Event()
        self.stage, self.inbox, self.outbox, self.pipeline, self.last = stage, inbox, outbox, pipeline, last

    def run(self) -> None:
        name_native_thread(self.name)
        try:
            self._loop()
        finally:
            self.done.set()

    def _loop(self) -> None:
        p, stage = self.pipeline, self.stage
        busy = 0.0
        while True:
            item = self.inbox.get()
            if item is EOS:
                break
            if p.failure is not None:
                continue  # drain after a failure elsewhere
            t0 = time.perf_counter()
            try:
                outs = stage.passenger(item) if isinstance(item, Passenger) else stage(item)
            except Exception as e:  # noqa: BLE001 - reported in the RunResult, never swallowed
                p.fail(stage.name, e)
                continue
            busy += time.perf_counter() - t0
            self._hand_on(outs)
        if p.failure is None:
            try:
                self._hand_on(stage.flush())
            except Exception as e:  # noqa: BLE001
                p.fail(stage.name, e)
        p.stats.stage_seconds[stage.name] = p.stats.stage_seconds.get(stage.name, 0.0) + busy
        self.outbox.put(EOS)

    def _hand_on(self, outs) -> None:
        if not self.last:
            for out in outs:
                self.outbox.put(out)
            return
        s = self.pipeline.stats
        for out in outs:  # out of the last stage: the item is done
            if isinstance(out, Passenger):
                continue
            s.frames_out += 1
            now = time.monotonic()
            if s.first_output is None:
                s.first_output = now
            captured = getattr(out, "captured", None)  # items that say when they were captured
            if captured is not None:
                s.latencies.append(now - captured)


class _Discard:
    def put(self, item) -> None:
        pass


class Pipeline:
    """Runs a source through ``stages`` on threads under ``policy``; ``run`` returns a RunResult.

    The source is anything with ``read() -> Read`` (see ``media.sources.open_source``), and
    ``stop()`` / ``close()``; the pipeline stops it but never closes it (its opener does)."""

    def __init__(self, stages: list[Stage], policy: Policy = Policy.FILE, queue_size: int = 8):
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        self.stages, self.policy, self.queue_size = list(stages), policy, queue_size
        self.stats = Stats()
        self.stopping = threading.Event()
        self.failure: str | None = None
        self.error: BaseException | None = None
        self.source_error: str | None = None
        self.source = None
        self._lock = threading.Lock()

    def fail(self, stage: str, e: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure, self.error = f"{stage} stage failed: {e.__class__.__name__}: {e}", e
        self.stopping.set()

    def stop(self) -> None:
        """Ask the source to stop; everything already read is still finished and written."""
        self.stopping.set()
        if self.source is not None:
            self.source.stop()  # a live source may be waiting for a camera to come back

    def _read(self, outbox, done: threading.Event) -> None:
        name_native_thread("rtcolor-source")
        try:
            while not self.stopping.is_set():
                status, item, note = self.source.read()
                if status is Status.FRAME:
                    self.stats.frames_in += 1
                    outbox.put(item)
                elif status is Status.PACKET:
                    outbox.put(Passenger(item))
                elif status is Status.END:
                    break
                elif status is Status.ERROR:
                    self.source_error = note or "the source failed"
                    break
                # EMPTY (nothing yet) and SKIPPED (a bad picture, noted by the source): read again
        except Exception as e:  # noqa: BLE001
            self.fail("source", e)
        finally:
            outbox.put(EOS)
            done.set()

    def run(self, source, poll: float = 0.2, on_poll=None) -> RunResult:
        """Run ``source`` to its end (or until ``stop``); ``on_poll(pipeline)`` is called every
        ``poll`` seconds from this thread (progress, telemetry)."""
        self.source = source
        live = self.policy is Policy.LIVE
        # live: a stage takes the newest item, never a queue of them (a slow stage drops, not delays),
        # or, if it needs every item, holds one at most
        first = LatestQueue() if live else queue.Queue(self.queue_size)
        later = [
            (queue.Queue(1) if stage.needs_every_item else LatestQueue()) if live else queue.Queue(self.queue_size)
            for stage in self.stages[1:]
        ]
        queues = [first, *later, _Discard()]
        threads = []
        for i, stage in enumerate(self.stages):
            stage.bind(self.stats)
            threads.append(_Thread(stage, queues[i], queues[i + 1], self, last=i == len(self.stages) - 1))
        reader_done = threading.Event()
        reader = threading.Thread(target=self._read, args=(first, reader_done), name="rtcolor-source", daemon=True)
        reader.start()
        for t in threads:
            t.start()
        interrupted = False
        try:
            while not threads[-1].done.wait(poll):  # short waits keep the main thread responsive to Ctrl-C
                if live:
                    self.stats.dropped = sum(getattr(q, "dropped", 0) for q in queues)
                if on_poll is not None:
                    on_poll(self)
            if on_poll is not None:
                on_poll(self)  # the last frames too: a progress bar ends at 30/30, not 29/30
        except KeyboardInterrupt:
            interrupted = True
        finally:
            self.stop()
            for done in [reader_done, *(t.done for t in threads)]:
                while True:  # the sinks must be finished before anyone closes them
                    try:
                        if done.wait(poll):
                            break
                    except KeyboardInterrupt:
                        interrupted = True  # a second Ctrl-C while draining: finish draining first
            if live:
                self.stats.dropped = sum(getattr(q, "dropped", 0) for q in queues)
            self.stats.finished = time.monotonic()
        outcome = Outcome.FAILED if self.failure else Outcome.INTERRUPTED if interrupted else Outcome.COMPLETE
        return RunResult(outcome, self.stats, failure=self.failure, source_error=self.source_error)


def summarize(problems: list[str]) -> str:
    """The first problem and how many more: one line, however damaged the file."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"
