"""A live source: reopened with backoff when it fails, with a record of every outage.

A camera that reboots or a Wi-Fi link that drops is a gap in the recording, not the end of it.
``LiveSource`` turns a raw source (media/sources.py) into a stream of Pictures stamped with the
capture clock, so a recording keeps real time across the gap. A network camera that is not up yet
when we start is waited for; ``give_up_after`` bounds how long any outage may last.
What the user needs afterwards is when the gaps were and how long (a log line for each, counts in
the telemetry and the ``--stats`` JSON); what they need meanwhile is the current state, shown on
the live preview ("reconnecting") and in the telemetry line: ``Outages`` keeps both.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import Enum

from .frames import picture_from_bgr
from .sources import CLOCK, NETWORK_KINDS, SourceError, Status, open_raw, parse_source

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
            if self.state is SourceState.LIVE:
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


class LiveSource:
    """Iterates Pictures from a source, reopening it with backoff when it fails (live policy).

    Pictures are stamped with the capture clock, so a recording keeps real time across drops.
    ``log`` gets a line for each loss and return; ``outages`` holds the gaps and the current state;
    ``stop`` (an Event) ends the iteration; ``gave_up`` says why it ended early, when it did.
    """

    live = True

    def __init__(
        self,
        uri: str,
        pace: bool = True,
        loop: bool = False,
        fps: float = 5.0,
        opencv: bool = False,
        log=None,
        give_up_after: float = 0.0,
    ):
        self.spec = parse_source(uri)
        self.args = {"pace": pace, "loop": loop, "fps": fps, "opencv": opencv}
        self.live = self.spec.kind != "file" or pace  # an unpaced file is processed like a file
        self.log = log or (lambda m: None)
        self.stop_event = threading.Event()
        self.reconnects = 0
        self.give_up_after = give_up_after  # seconds without a frame before giving up (0: never)
        self.gave_up: str | None = None  # why the source was given up, when it was
        self.outages = Outages()
        self._problems: list[str] = []
        try:
            self.source = open_raw(self.spec, **self.args)
        except SourceError as e:
            # A file or camera that cannot be opened is a mistake to report now; a network camera
            # may simply not be up yet (it boots after the recorder), so it is waited for.
            if self.spec.kind not in NETWORK_KINDS:
                raise
            self.source = None
            self.outages.lost(str(e))
            hint = f"giving up after {give_up_after:g} s" if give_up_after else "until it comes up (Ctrl-C stops)"
            self.log(f"source {self.spec.uri}: not up yet ({e}); retrying with backoff {hint}")

    @property
    def ends(self) -> bool:
        """Files and picture folders end; cameras and streams are reopened when they fail."""
        return self.spec.kind in ("file", "images")

    @property
    def problems(self) -> list[str]:
        """What a file lost (undecodable frames): the run is then partial."""
        return [*self._problems, *getattr(self.source, "problems", [])]

    def stop(self) -> None:
        self.stop_event.set()

    def _lost(self, reason: str) -> None:
        if self.outages.lost(reason):
            self.log(f"source {self.spec.uri}: lost at {clock_text(time.time())} ({reason}); reconnecting")
        if self.source is not None:
            self.source.close()
            self.source = None

    def _give_up(self) -> bool:
        down = self.outages.down_for()
        if not self.give_up_after or down < self.give_up_after:
            return False
        self.gave_up = f"no frame from {self.spec.uri} for {down:.0f} s ({self.outages.reason})"
        return True

    def __iter__(self):
        index = 0
        start = time.monotonic()
        backoff = FIRST_RETRY
        try:
            while not self.stop_event.is_set():
                if self.source is None:
                    if self._give_up():
                        return
                    try:
                        self.source = open_raw(self.spec, **self.args)
                        if self.outages.state is not SourceState.CONNECTING:  # a first connection is no reconnect
                            self.reconnects += 1
                        backoff = FIRST_RETRY
                    except SourceError as e:
                        self.outages.lost(str(e))
                        self.stop_event.wait(backoff)
                        backoff = min(backoff * 2, LAST_RETRY)
                        continue
                status, frame = self.source.read()
                if status is Status.FRAME:
                    gap = self.outages.frame()
                    if gap is not None:
                        self.log(
                            f"source {self.spec.uri}: reconnected, back after {gap[1]:.1f} s "
                            f"(outage {len(self.outages.gaps)}, from {clock_text(gap[0])})"
                        )
                    captured = time.monotonic()
                    yield picture_from_bgr(
                        frame,
                        index,
                        pts=int((captured - start) / CLOCK),
                        time_base=CLOCK,
                        captured=captured,
                        rotation=getattr(self.source, "rotation", 0),
                    )
                    index += 1
                elif status is Status.END:
                    return
                elif status is Status.ERROR and self.ends:  # a file is not a camera: never replay it
                    self._problems.append("reading failed before the end of the file")
                    return
                elif status is Status.ERROR:
                    self._lost(getattr(self.source, "last_error", None) or "read failed")
                    if self._give_up():
                        return
                    self.stop_event.wait(backoff)
                    backoff = min(backoff * 2, LAST_RETRY)
        finally:
            self.outages.end()

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
