"""Outages of a live source: when each began, how long it lasted, and what state the source is in.

A camera that reboots or a Wi-Fi link that drops is a gap in the recording, not the end of it
(``sources.LiveSource`` reopens it). What the user needs afterwards is when the gaps were and how
long (a log line for each, counts in the telemetry and the ``--stats`` JSON); what they need
meanwhile is the current state, shown on the live preview ("reconnecting") and in the telemetry
line: ``Outages`` keeps both.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import Enum

# Seconds between attempts to reopen a lost source: doubling from the first to the last. Kept short:
# a recorder should be back within a couple of seconds of the camera, and a refused connection to
# 127.0.0.1 or a LAN camera costs next to nothing to try.
FIRST_RETRY, LAST_RETRY = 0.1, 2.0


class SourceState(Enum):
    CONNECTING = "connecting"  # never had a frame yet
    LIVE = "live"
    RECONNECTING = "reconnecting"  # had frames, lost them, trying again
    ENDED = "ended"


def clock_text(wall: float) -> str:
    """A wall-clock time as the log shows it (local time, to the second)."""
    return time.strftime("%H:%M:%S", time.localtime(wall))


@dataclass
class Outages:
    """Outage bookkeeping for one source; thread-safe (the reader thread writes, telemetry reads)."""

    state: SourceState = SourceState.CONNECTING
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (wall-clock start, seconds)
    down_since: float | None = None  # time.monotonic() when the current outage began
    down_since_wall: float | None = None
    reason: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def lost(self, reason: str) -> bool:
        """The source stopped giving frames; True when this begins a new outage."""
        with self._lock:
            self.reason = reason
            if self.down_since is not None:
                return False
            self.down_since, self.down_since_wall = time.monotonic(), time.time()
            if self.state is SourceState.LIVE:
                self.state = SourceState.RECONNECTING
            return True

    def frame(self) -> tuple[float, float] | None:
        """A frame arrived; returns (wall-clock start, seconds) of the outage it ends, if any."""
        with self._lock:
            if self.state in (SourceState.LIVE, SourceState.ENDED):  # ended: a read still in flight
                return None
            was_connecting = self.state is SourceState.CONNECTING
            self.state = SourceState.LIVE
            if self.down_since is None:
                return None
            gap = (self.down_since_wall or time.time(), time.monotonic() - self.down_since)
            self.down_since = self.down_since_wall = None
            if was_connecting:  # waiting for a camera that boots later is not an outage of the stream
                return None
            self.gaps.append(gap)
            return gap

    def down_for(self) -> float:
        """Seconds the source has been without frames now (0 while live)."""
        with self._lock:
            return 0.0 if self.down_since is None else time.monotonic() - self.down_since

    def end(self) -> None:
        with self._lock:
            if self.down_since is not None and self.state is SourceState.RECONNECTING:
                self.gaps.append((self.down_since_wall or time.time(), time.monotonic() - self.down_since))
                self.down_since = self.down_since_wall = None
            self.state = SourceState.ENDED

    def summary(self) -> dict:
        """Counts for telemetry and ``--stats``: outages, total and longest seconds, current state."""
        with self._lock:
            lengths = [g[1] for g in self.gaps]
            return {
                "state": self.state.value,
                "outages": len(lengths),
                "outage_seconds": round(sum(lengths), 3),
                "longest_outage_seconds": round(max(lengths), 3) if lengths else 0.0,
                "gaps": [{"start": clock_text(start), "seconds": round(length, 3)} for start, length in self.gaps],
            }
