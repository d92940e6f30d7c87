"""One network for several cameras: keyframes that fall due together run as one batch.

Each camera's pipeline calls ``infer`` from its own thread, as it would call the backend itself.
A single worker thread collects the requests that arrive within ``window`` seconds of the first
(or until every registered camera has asked), joins those of one input shape into one batch, runs
the backend once and hands each caller its rows. A GPU runs a batch of 4 in about the time of 1;
on a CPU the gain is smaller (measured in docs/experiments/2026-11-28-regression-default.md), but
one model is loaded, not one per camera, and the runtime is never entered by two threads at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ...threads import name_native_thread
from .base import BackendBase


@dataclass
class _Request:
    lum: np.ndarray
    hints: np.ndarray | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None


class BatchingBackend(BackendBase):
    """Wraps a backend; thread-safe ``infer`` that batches concurrent callers."""

    def __init__(self, inner, callers: int = 1, max_batch: int = 8, window: float = 0.004):
        self.inner, self.callers, self.max_batch, self.window = inner, callers, max_batch, window
        self.name, self.device, self.precision = inner.name, inner.device, inner.precision
        self.takes_hints = getattr(inner, "takes_hints", False)
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._closed = False
        self.calls = 0  # network calls made
        self.rows = 0  # frames they carried (rows / calls: the mean batch)
        self._worker = threading.Thread(target=self._serve, name="rtcolor-batch", daemon=True)
        self._worker.start()

    def infer(self, lum, hints=None):
        hints = None if hints is None else np.ascontiguousarray(hints, np.float32)
        req = _Request(np.ascontiguousarray(lum, np.float32), hints)
        with self._cond:
            if self._closed:
                raise RuntimeError("the batching backend is closed")
            self._queue.append(req)
            self._cond.notify_all()
        req.done.wait()
        if req.error is not None:
            raise req.error
        return req.result

    def _take(self) -> list[_Request] | None:
        """The next batch: requests of the first one's shape, once the window closed or all asked."""
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._closed)
            if not self._queue:
                return None
            deadline = time.monotonic() + self.window
            while len(self._queue) < self.callers and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    break
            shape = self._queue[0].lum.shape[1:]
            batch, rows = [], 0
            for req in list(self._queue):
                if req.lum.shape[1:] == shape and rows + len(req.lum) <= max(self.max_batch, len(req.lum)):
                    batch.append(req)
                    rows += len(req.lum)
                    self._queue.remove(req)
            return batch

    def _serve(self) -> None:
        name_native_thread("rtcolor-batch")
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                out = self.inner.infer(np.concatenate([r.lum for r in batch]), _batch_hints(batch))
                self.calls += 1
                self.rows += sum(len(r.lum) for r in batch)
                start = 0
                for r in batch:
                    r.result = out[start : start + len(r.lum)]
                    start += len(r.lum)
            except Exception as e:  # noqa: BLE001 - handed to every caller, who reports it
                for r in batch:
                    r.error = e
            for r in batch:
                r.done.set()

    def warmup(self, shape: tuple[int, int, int, int]) -> None:
        self.inner.warmup(shape)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(5)
        self.inner.close()

    def describe(self) -> str:
        return f"{self.inner.describe()}, batching {self.callers} cameras"


def _batch_hints(batch: list[_Request]) -> np.ndarray | None:
    """The batch's hints: None when no caller gave any, else every caller's (zeros for those without)."""
    if all(r.hints is None for r in batch):
        return None
    return np.concatenate(
        [r.hints if r.hints is not None else np.zeros((len(r.lum), 3, *r.lum.shape[2:]), np.float32) for r in batch]
    )
