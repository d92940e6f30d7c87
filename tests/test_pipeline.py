"""The runner on its own: trivial stages, no model, no video."""

from __future__ import annotations

import threading
import time

from realtime_color.media.frames import Policy, Read, Status
from realtime_color.video.pipeline import Outcome, Passenger, Pipeline, Stage


class Numbers:
    """A source of 0..n-1 with a packet after every 4th number; ``delay`` seconds between reads."""

    def __init__(self, n: int, delay: float = 0.0, packets: bool = False, fail_at: int | None = None):
        self.n, self.delay, self.packets, self.fail_at = n, delay, packets, fail_at
        self.i, self.packet_due, self.stopped = 0, False, False

    def read(self, timeout: float = 1.0) -> Read:
        if self.packet_due:
            self.packet_due = False
            return Read(Status.PACKET, f"packet after {self.i - 1}")
        if self.i == self.fail_at:
            return Read(Status.ERROR, note="unplugged")
        if self.i >= self.n:
            return Read(Status.END)
        time.sleep(self.delay)
        self.i += 1
        self.packet_due = self.packets and self.i % 4 == 0
        return Read(Status.FRAME, self.i - 1)

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        pass


class Collect(Stage):
    name = "collect"

    def __init__(self):
        self.items, self.passengers = [], []

    def __call__(self, item) -> list:
        self.items.append(item)
        return [item]

    def passenger(self, item: Passenger) -> list:
        self.passengers.append((len(self.items), item.payload))
        return []


def test_two_trivial_stages_run_without_a_model():
    out = Collect()
    pipe = Pipeline([Stage("double", lambda x: [2 * x]), out], Policy.FILE, queue_size=2)
    result = pipe.run(Numbers(100))
    assert result.outcome is Outcome.COMPLETE and result.failure is None
    assert out.items == [2 * i for i in range(100)]  # every item, in order (back-pressure drops nothing)
    s = result.stats.summary()
    assert s["frames_in"] == s["frames_out"] == 100 and s["dropped"] == 0
    assert set(s["stage_seconds"]) == {"double", "collect"}


def test_passengers_keep_their_place_between_the_items():
    class HoldPairs(Stage):  # holds every even item back until the next one: passengers wait too
        name = "pairs"

        def __init__(self):
            self.held = []

        def __call__(self, x) -> list:
            self.held.append(x)
            if x % 2:
                out, self.held = self.held, []
                return out
            return []

        def passenger(self, item) -> list:
            if self.held:
                self.held.append(item)
                return []
            return [item]

        def flush(self) -> list:
            return self.held

    out = Collect()
    result = Pipeline([HoldPairs(), out]).run(Numbers(10, packets=True))
    assert result.outcome is Outcome.COMPLETE and out.items == list(range(10))
    assert out.passengers == [(4, "packet after 3"), (8, "packet after 7")]


def test_a_failing_stage_is_a_failed_result_and_the_rest_drains():
    def boom(x):
        if x == 5:
            raise ValueError("five")
        return [x]

    out = Collect()
    result = Pipeline([Stage("boom", boom), out]).run(Numbers(50))
    assert result.outcome is Outcome.FAILED and result.failure == "boom stage failed: ValueError: five"
    # after a failure the stages drain what is queued without working on it: nothing past 4 gets out
    assert out.items == list(range(len(out.items))) and len(out.items) <= 5


def test_a_source_error_ends_the_run_and_is_said():
    out = Collect()
    result = Pipeline([out]).run(Numbers(10, fail_at=3))
    assert result.outcome is Outcome.COMPLETE and result.source_error == "unplugged" and out.items == [0, 1, 2]


def test_live_policy_drops_stale_items_and_counts_them():
    def slow(x):
        time.sleep(0.02)
        return [x]

    out = Collect()
    result = Pipeline([Stage("slow", slow), out], Policy.LIVE).run(Numbers(200, delay=0.001))
    s = result.stats
    assert s.dropped > 50 and s.frames_in == 200 == s.frames_out + s.dropped
    assert out.items == sorted(out.items) and out.items[-1] == 199  # always the newest, never a backlog


def test_stop_drains_what_was_read_and_stops_the_source():
    out = Collect()
    src = Numbers(10_000, delay=0.001)
    pipe = Pipeline([out])
    threading.Timer(0.3, pipe.stop).start()
    result = pipe.run(src)
    assert result.outcome is Outcome.COMPLETE and src.stopped
    assert 0 < len(out.items) == result.stats.frames_in < 10_000


def test_live_policy_drops_in_front_of_a_slow_stage_but_never_before_one_that_needs_every_item():
    seen = []

    class Sequence(Stage):  # follows the sequence (as the temporal step does): must see every item
        name, needs_every_item = "sequence", True

        def __call__(self, x):
            seen.append(x)
            return [x]

    def slow(x):
        time.sleep(0.02)
        return [x]

    out = Collect()
    result = Pipeline([Stage("first"), Sequence(), Stage("slow", slow), out], Policy.LIVE).run(
        Numbers(200, delay=0.001)
    )
    s = result.stats
    assert s.dropped > 50 and s.frames_in == 200 == s.frames_out + s.dropped  # dropped in front of the slow stage
    assert out.items == sorted(out.items) and out.items[-1] == 199
    assert seen == sorted(seen) and len(seen) > len(out.items)  # the sequence stage saw more than got out
