"""Ctrl-C (and SIGTERM) while outputs are being finalized: wait for them, unless asked three times.

The first Ctrl-C stops the work; what was made is then finalized (a playable partial file). A
second one during that is noted, not obeyed: the process exits 130 once the files are finished.
A third abandons them, and the caller says what was lost.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Asked:
    """How many times the user asked to stop while finishing, and what is still unfinished."""

    count: int = 0
    pending: list[str] = field(default_factory=list)


@contextmanager
def finishing(log=None, pending: list[str] | None = None) -> Iterator[Asked]:
    """Finish the outputs under this block; Ctrl-C/SIGTERM are counted (``asked.count``) instead of
    raised, until the second one during the block, which raises KeyboardInterrupt after ``log``
    said which of ``asked.pending`` are lost. Outside the main thread signals cannot be caught here:
    the block just runs."""
    from .app import _log

    log = log or _log
    asked = Asked(pending=list(pending or []))
    if threading.current_thread() is not threading.main_thread():
        yield asked
        return

    def handler(signum, frame):
        asked.count += 1
        if asked.count == 1:
            log("finishing the output files first (press Ctrl-C again to abandon them)")
            return
        raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield asked
    except KeyboardInterrupt:
        if asked.pending:
            log(f"abandoned before they were finished, so lost: {', '.join(asked.pending)}")
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
