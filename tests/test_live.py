"""Live: the network beside the stream (video/live.py). Frames never wait for it, a late keyframe
lands where the objects are now, and a new shot never shows the previous shot's colors."""

from __future__ import annotations

import threading
import time

import numpy as np

from realtime_color.color import L_SCALE
from realtime_color.media.frames import Picture, Policy, Read, Status
from realtime_color.runtime.colorizer import Colorizer
from realtime_color.video.live import FADE_FRAMES, LiveChroma
from realtime_color.video.stages import PipelineConfig, colorize_pipeline
from realtime_color.video.temporal import TemporalConfig

BRIGHT, DARK = 200, 60  # the two shots' luma; the fake network colors a bright input warm, a dark one cold


class ShotBackend:
    """A fake network, slow as a CPU's: warm ab for a bright picture, cold for a dark one."""

    name, device, precision = "fake", "cpu", "fp32"

    def __init__(self, delay: float):
        self.delay, self.calls = delay, 0

    def infer(self, x):
        time.sleep(self.delay)
        self.calls += 1
        n, _, h, w = x.shape
        warm = x.reshape(n, -1).mean(axis=1) > 50.0 / L_SCALE
        ab = np.where(warm, 0.5, -0.5).astype(np.float32)[:, None, None, None]
        return np.broadcast_to(ab, (n, 2, h // 2, w // 2)).copy()


class TwoShots:
    """A paced live source: ``cut`` frames of a bright shot, then a dark one (textured, so the flow has
    something to follow)."""

    policy = Policy.LIVE

    def __init__(self, frames: int, cut: int, fps: float = 30.0):
        self.frames, self.cut, self.fps, self.i = frames, cut, fps, 0
        self.t0 = time.monotonic()
        rng = np.random.default_rng(0)
        self.texture = rng.integers(-12, 13, (96, 160)).astype(np.int16)
        self.stopped = threading.Event()

    def read(self) -> Read:
        if self.i >= self.frames or self.stopped.is_set():
            return Read(Status.END)
        time.sleep(max(0.0, self.t0 + self.i / self.fps - time.monotonic()))
        base = BRIGHT if self.i < self.cut else DARK
        y = np.clip(base + np.roll(self.texture, self.i, axis=1), 16, 235).astype(np.uint8)
        pic = Picture(y=y, index=self.i)
        self.i += 1
        return Read(Status.FRAME, pic)

    def stop(self) -> None:
        self.stopped.set()

    def close(self) -> None:
        pass


class Chroma:
    """A sink that keeps each picture's index and mean chroma offset (Cb - 128, Cr - 128)."""

    def __init__(self):
        self.rows = []

    def write(self, pic):
        self.rows.append((pic.index, float(pic.u.mean()) - 128.0, float(pic.v.mean()) - 128.0))

    def close(self, complete=True):
        pass


def run(source, delay: float, k: int, wait: bool = False):
    backend = ShotBackend(delay)
    sink = Chroma()
    cfg = PipelineConfig(temporal=TemporalConfig(keyframe_interval=k), wait_for_keyframes=wait)
    result = colorize_pipeline(Colorizer(backend, size=64), [sink], cfg, Policy.LIVE).run(source)
    assert result.failure is None, result.failure
    return result, sink.rows, backend


def test_a_scene_cut_shows_no_colors_from_the_previous_shot():
    # Keyframes every 2 frames and a network that takes 6 frames: the first shot's keyframes are
    # always out when the cut comes, and come back during the second shot.
    result, rows, _ = run(TwoShots(frames=60, cut=30), delay=0.2, k=2)
    first = [(u, v) for i, u, v in rows if i < 30 and (u, v) != (0.0, 0.0)]
    warm = np.mean(first, axis=0)
    assert np.hypot(*warm) > 5  # the first shot got its (warm) colors
    second = [(i, u, v) for i, u, v in rows if i >= 30]
    assert second
    for i, u, v in second:
        assert u * warm[0] + v * warm[1] <= 0.0, (i, u, v)  # never the first shot's hue: gray or its own
    gray = [i for i, u, v in second if abs(u) < 0.5 and abs(v) < 0.5]
    assert gray and gray[0] == second[0][0]  # it starts gray, until its keyframe is back
    cold = [np.hypot(u, v) for i, u, v in second if u * warm[0] + v * warm[1] < 0]
    assert cold and cold[-1] > 5  # then takes its own colors
    summary = result.stats.summary()
    assert summary["scene_cuts"] == 1 and summary["gray_frames"] >= len(gray)
    assert summary["new_shot_gray_frames"]["n"] == 2  # the first frame and the cut: gray, then colors


def test_frames_never_wait_for_the_network():
    # A network call takes 15 frames: waiting for keyframes, at most ~2 frames a second would come out.
    result, rows, backend = run(TwoShots(frames=45, cut=1000), delay=0.5, k=4)
    s = result.stats
    assert s.frames_in == s.frames_out + s.dropped
    assert s.frames_out >= 40 and backend.calls <= 4  # frames flowed while the network was busy
    summary = s.summary()
    assert summary["keyframes_skipped"] > 0  # keyframes that fell due while busy: the newest waited
    age = summary["keyframe_age_frames"]
    assert age["n"] > 0 and age["max"] >= 10  # shown with the chroma of a keyframe many frames old
    assert summary["keyframe_age_ms"]["max"] > 0
    assert summary["network_queue"]["max"] <= 2  # one in the network, one waiting at most
    assert {"latency_p99_ms", "latency_max_ms"} <= set(summary)


def test_waiting_for_keyframes_still_selects_the_old_path():
    result, rows, backend = run(TwoShots(frames=20, cut=10), delay=0.0, k=2, wait=True)
    assert result.stats.counts.get("gray_frames") is None and "keyframe_age_frames" not in result.stats.samples
    assert all((u, v) != (0.0, 0.0) for _, u, v in rows)  # every frame waited for its colors


class HandWorker:
    """A KeyframeWorker whose results the test hands back when it likes."""

    def __init__(self):
        self.sent, self.ready = [], []

    def submit(self, tag, lum, *hints):
        self.sent.append((tag, lum))
        self.hints = hints

    def results(self):
        out, self.ready = self.ready, []
        return out

    def outstanding(self):
        return len(self.sent)

    def close(self):
        pass


def square(x0: int, h: int = 64, w: int = 96) -> np.ndarray:
    lum = np.full((h, w), 20.0, np.float32)
    lum[20:40, x0 : x0 + 16] = 80.0
    return lum


def test_a_late_keyframe_lands_where_the_object_is_now():
    # A bright square moves 3 px a frame; the network (by hand) colors it, on frame 0, 8 frames late.
    worker = HandWorker()
    live = LiveChroma(TemporalConfig(keyframe_interval=100, smoothing=0.0), worker)
    for i in range(9):
        lum = square(10 + 3 * i)
        if i == 8:
            (tag, key_lum), *_ = worker.sent
            ab = np.zeros((*key_lum.shape, 2), np.float32)
            ab[key_lum > 50] = 0.6  # the square's color, where it was on frame 0
            worker.ready.append((tag, ab))
        ab_now = live.step(lum, key=i == 0, cut=i == 0, index=i, captured=i / 30)
        if i < 8:
            assert not ab_now.any()  # the shot's first keyframe is not back: gray
    assert live.key == (0, 0.0)
    now = ab_now[..., 0] * FADE_FRAMES  # the first colored frame is faded in: 1 / FADE_FRAMES of its color
    inside, left_behind = now[24:36, 38:46].mean(), now[24:36, 10:20].mean()
    assert inside > 0.5 and left_behind < 0.1, (inside, left_behind)  # on the square now, not where it was
    strength = [float(np.abs(ab_now).max())]
    for i in range(9, 9 + FADE_FRAMES):  # the still square: the colors fade in, then stay
        strength.append(float(np.abs(live.step(square(34), False, False, i, i / 30)).max()))
    assert np.allclose(np.diff(strength[:FADE_FRAMES]), strength[0], rtol=0.05)
    assert strength[FADE_FRAMES] == strength[FADE_FRAMES - 1]


def test_a_camera_back_in_another_size_is_a_new_shot_with_its_own_keyframe():
    worker = HandWorker()
    live = LiveChroma(TemporalConfig(keyframe_interval=100), worker)
    live.step(square(10), key=True, cut=True, index=0, captured=0.0)
    ((tag, key_lum),) = worker.sent
    worker.ready.append((tag, np.full((*key_lum.shape, 2), 0.6, np.float32)))
    assert live.step(square(10), key=False, cut=False, index=1, captured=1 / 30).any()  # colored
    # Back in another size and not seen as a cut (nor due a keyframe) upstream: a new shot all the same
    ab = live.step(square(10, h=48, w=64), key=False, cut=False, index=2, captured=2 / 30)
    assert not ab.any() and ab.shape == (48, 64, 2) and len(worker.sent) == 2  # gray, its keyframe sent
    worker.ready.append((tag, np.full((*key_lum.shape, 2), 0.6, np.float32)))  # the old shot's, late
    assert not live.step(square(10, h=48, w=64), key=False, cut=False, index=3, captured=3 / 30).any()


def test_a_keyframe_takes_its_hints_to_the_network():
    worker = HandWorker()
    live = LiveChroma(TemporalConfig(), worker)
    live.step(square(10), key=True, cut=True, index=0, captured=0.0, hints=("a hint",), source_hw=(720, 1280))
    assert worker.hints == (("a hint",), (720, 1280))  # as Colorizer.predict_small takes them
