"""Live: URI parsing, a flaky fake camera, slow inference without backlog, UDP input, recording,
and the HTTP preview in a real headless browser."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from fractions import Fraction

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.media.frames import Policy
from realtime_color.media.sources import LiveSource, SourceError, parse_source
from realtime_color.media.synth import SceneClip
from realtime_color.model.weights import load_checkpoint
from realtime_color.runtime.backends import open_backend
from realtime_color.runtime.colorizer import Colorizer
from realtime_color.video.stages import PipelineConfig, colorize_pipeline
from realtime_color.video.temporal import TemporalConfig

runner = CliRunner()


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collect:
    def __init__(self):
        self.pictures = []
        self.closed = False

    def write(self, pic):
        self.pictures.append((pic.index, pic.captured, time.monotonic(), pic.u is not None))

    def close(self, complete=True):
        self.closed = True


class SlowBackend:
    """Wraps a backend and sleeps in every call: inference slower than the camera."""

    def __init__(self, inner, delay):
        self.inner, self.delay = inner, delay
        self.name, self.device, self.precision = inner.name, inner.device, inner.precision

    def infer(self, x):
        time.sleep(self.delay)
        return self.inner.infer(x)


def make_colorizer(ckpt_path, delay=0.0):
    ckpt = load_checkpoint(ckpt_path)
    be = open_backend("torch", ckpt, device="cpu")
    return Colorizer(SlowBackend(be, delay) if delay else be, size=64)


def run_live(source, colorizer, seconds, k=1, wait=False):
    sink = Collect()
    cfg = PipelineConfig(temporal=TemporalConfig(keyframe_interval=k), wait_for_keyframes=wait)
    pipe = colorize_pipeline(colorizer, [sink], cfg, Policy.LIVE)
    threading.Timer(seconds, pipe.stop).start()
    result = pipe.run(source)
    source.close()
    assert result.failure is None, result.failure
    return result.stats, sink


def test_parse_source(tmp_path):
    clip = tmp_path / "a.mp4"
    clip.write_bytes(b"x")
    (tmp_path / "pics").mkdir()
    cases = {
        "0": "camera",
        "/dev/video2": "camera",
        "rtsp://cam/stream": "rtsp",
        "http://cam/mjpg": "http",
        "udp://127.0.0.1:5000": "udp",
        str(clip): "file",
        str(tmp_path / "pics"): "images",
        str(tmp_path / "*.png"): "images",
        "synth://?fps=10": "synth",
    }
    for uri, kind in cases.items():
        assert parse_source(uri).kind == kind, uri
    assert parse_source("0").options["index"] == 0
    with pytest.raises(SourceError, match="no such file"):
        parse_source(str(tmp_path / "missing.mp4"))


def test_fake_camera_dies_and_comes_back(random_checkpoint):
    log = []
    src = LiveSource("synth://?fps=30&size=160x96&die_after=20&down=0.6&seed=3", log=log.append)
    stats, sink = run_live(src, make_colorizer(random_checkpoint), 3.5)
    assert src.reconnects >= 2, log  # it died at least twice and was reopened each time
    assert any("reconnected" in m for m in log) and any("lost" in m for m in log)
    assert stats.frames_out >= 40 and all(color for *_, color in sink.pictures)
    assert not sink.closed  # the sink stayed up through the outages (the caller closes it)
    gaps = np.diff([captured for _, captured, _, _ in sink.pictures])
    assert gaps.max() >= 0.5  # the outage shows as a gap in capture time, not as made-up frames


@pytest.mark.parametrize("wait", [True, False], ids=["waiting-for-keyframes", "network-beside-the-stream"])
def test_slow_inference_drops_stale_frames_and_builds_no_backlog(random_checkpoint, wait):
    src = LiveSource("synth://?fps=60&size=160x96")
    stats, sink = run_live(src, make_colorizer(random_checkpoint, delay=0.1), 4.0, k=1, wait=wait)
    if wait:
        assert stats.dropped > 60  # ~60 fps in, < 10 fps through the network
    else:  # frames do not wait for the network: the keyframes it cannot take are skipped instead
        assert stats.counts["keyframes_skipped"] > 60 and stats.frames_out > stats.counts["keyframes_skipped"]
    assert stats.frames_in == stats.frames_out + stats.dropped
    lat = np.array([done - captured for _, captured, done, _ in sink.pictures])
    half = len(lat) // 2
    assert np.median(lat[half:]) < np.median(lat[:half]) + 0.1  # latency does not grow
    assert lat.max() < 0.8  # a frame or two of inference, never a queue of them


def _udp_sender(url, seconds, started):
    clip = SceneClip(96, 160, 30.0)
    with av.open(url, "w", format="mpegts") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
        s.options = {"preset": "ultrafast", "tune": "zerolatency"}
        s.time_base = Fraction(1, 90000)
        t0 = time.monotonic()
        started.set()
        for i in range(int(seconds * 30)):
            frame = av.VideoFrame.from_ndarray(clip.frame(i), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i * 3000, Fraction(1, 90000)
            c.mux(s.encode(frame))
            time.sleep(max(0.0, t0 + (i + 1) / 30 - time.monotonic()))
        c.mux(s.encode())


def test_udp_mpegts_stream_on_loopback(random_checkpoint):
    port = free_port(socket.SOCK_DGRAM)
    started = threading.Event()
    sender = threading.Thread(target=_udp_sender, args=(f"udp://127.0.0.1:{port}?pkt_size=1316", 6.0, started))
    sender.start()
    started.wait(10)
    src = LiveSource(f"udp://127.0.0.1:{port}?timeout=3000000")
    stats, sink = run_live(src, make_colorizer(random_checkpoint), 3.0, k=4)
    sender.join(15)
    assert stats.frames_out >= 30
    assert all(color for *_, color in sink.pictures)


def test_stream_file_to_recording_with_segments(tmp_path, random_checkpoint):
    from realtime_color.media.synth import write_clip

    clip = write_clip(tmp_path / "cam.mp4", seconds=4.0, width=160, height=96, audio=False)
    stats_path = tmp_path / "s.json"
    args = ["stream", str(clip), "--out", str(tmp_path / "rec.mp4"), "--duration", "3", "--segment", "0.02"]
    r = runner.invoke(app, [*args, "--stats", str(stats_path), "--model", random_checkpoint, "--backend", "torch"])
    assert r.exit_code == 0, r.output
    s = json.loads(stats_path.read_text())
    assert s["frames_out"] >= 0.8 * s["frames_in"] and s["latency_p95_ms"] is not None
    parts = sorted(tmp_path.glob("rec_*.mp4"))
    assert len(parts) >= 2 and [str(p) for p in parts] == sorted(s["recordings"])
    total = 0
    for p in parts:
        with av.open(str(p)) as c:
            total += sum(1 for _ in c.decode(video=0))
    assert total == s["frames_out"]


def test_bad_stream_arguments(tmp_path, random_checkpoint):
    r = runner.invoke(app, ["stream", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "r.mp4")])
    assert r.exit_code == 2 and "no such file" in " ".join(r.output.split())
    r = runner.invoke(app, ["stream", "synth://", "--out", "ftp://x", "--model", random_checkpoint])
    assert r.exit_code == 2 and "unknown kind" in " ".join(r.output.split())
    for name in ("rec.txt", "rec.webm"):  # refused before the source starts, not at the first frame
        r = runner.invoke(app, ["stream", "synth://", "--out", str(tmp_path / name), "--model", random_checkpoint])
        assert r.exit_code == 2 and "name an .mp4, .mkv or .mov file" in " ".join(r.output.split()), r.output
    assert list(tmp_path.iterdir()) == []
    r = runner.invoke(app, ["stream", "synth://", "--out", "http://127.0.0.1:99999", "--model", random_checkpoint])
    assert r.exit_code == 2 and "port must be a number from 1 to 65535" in " ".join(r.output.split())


def test_a_recording_never_replaces_its_input_or_an_old_recording(tmp_path, random_checkpoint):
    from realtime_color.media.synth import write_clip

    clip = write_clip(tmp_path / "cam.mp4", seconds=1.0, width=64, height=48, audio=False)
    before = clip.read_bytes()
    old = tmp_path / "night.mp4"
    old.write_bytes(b"last night")
    (tmp_path / "seg_004.mp4").write_bytes(b"an old segment")
    common = ["--duration", "1", "--model", random_checkpoint, "--backend", "torch"]
    cases = [
        (["stream", str(clip), "--out", str(clip), "--force"], "would overwrite an input"),
        (["stream", str(clip), "--out", str(old)], "exists; pass --force"),
        (["stream", str(clip), "--out", str(tmp_path / "seg.mp4"), "--segment", "1"], "seg_004.mp4 exists"),
    ]
    for args, message in cases:
        r = runner.invoke(app, [*args, *common])
        assert r.exit_code == 2 and message in " ".join(r.output.split()), (args, r.output)
    assert clip.read_bytes() == before and old.read_bytes() == b"last night"
    r = runner.invoke(app, ["stream", str(clip), "--out", str(old), "--force", "--no-pace", *common])
    assert r.exit_code == 0, r.output
    with av.open(str(old)) as c:
        assert sum(1 for _ in c.decode(video=0)) > 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_http_preview_in_a_headless_browser(tmp_path, random_checkpoint):
    port = free_port()
    cmd = [sys.executable, "-m", "realtime_color.cli", "stream", "synth://?fps=15&size=320x180&gray=1"]
    proc = subprocess.Popen(
        [*cmd, "--out", f"http://127.0.0.1:{port}", "--model", random_checkpoint, "--backend", "torch", "-k", "1"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/frame.jpg", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        shots = []
        for i in range(2):
            shot = tmp_path / f"shot{i}.png"
            subprocess.run(
                ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=400,300"]
                + ["--timeout=2500", f"--screenshot={shot}", f"http://127.0.0.1:{port}/"],
                capture_output=True,
                timeout=60,
            )
            shots.append(shot)
            time.sleep(1.0)
        from realtime_color.media.images import read_image

        a, b = (read_image(s).astype(int) for s in shots)
        region = (slice(0, 180), slice(40, 360))  # where the 320x180 picture sits on the page
        assert np.abs(a[region] - b[region]).mean() > 0.5  # the frames change over time
        color = np.abs(b[region] - b[region].mean(-1, keepdims=True)).mean()
        assert color > 1.0  # and they are in color (the source is gray)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 130


def test_http_preview_binds_loopback_unless_told():
    from realtime_color.media.sinks import open_sink

    sink = open_sink("http://:0")  # no host given
    try:
        assert sink.httpd.server_address[0] == "127.0.0.1"
    finally:
        sink.close()


def test_udp_push_sink_reaches_a_receiver(random_checkpoint):
    from realtime_color.media.sinks import open_sink

    port = free_port(socket.SOCK_DGRAM)
    got = []

    def receive():
        src = LiveSource(f"udp://127.0.0.1:{port}?timeout=8000000")
        for pic in src:
            got.append(pic.y.shape)
            if len(got) >= 20:
                break
        src.close()

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    time.sleep(0.5)  # the receiver is listening before the first packet
    push = open_sink(f"udp://127.0.0.1:{port}?pkt_size=1316")
    source = LiveSource("synth://?fps=30&size=160x96")
    pipe = colorize_pipeline(make_colorizer(random_checkpoint), [push], PipelineConfig(), Policy.LIVE)
    threading.Timer(3.0, pipe.stop).start()
    pipe.run(source)
    push.close()
    receiver.join(10)
    assert len(got) >= 20 and got[0] == (96, 160)


@pytest.mark.parametrize("gray", ["1", "0"])
def test_gray_ir_and_color_cameras_both_work(random_checkpoint, gray):
    src = LiveSource(f"synth://?fps=30&size=160x96&gray={gray}")
    stats, sink = run_live(src, make_colorizer(random_checkpoint), 1.5, k=4)
    assert stats.frames_out >= 10 and all(color for *_, color in sink.pictures)


def test_a_camera_that_changes_resolution_keeps_both_parts(tmp_path):
    from realtime_color.media.frames import Picture, planes_from_rgb
    from realtime_color.media.sinks import RecordingSink

    sink = RecordingSink(tmp_path / "rec.mp4")
    for i, (h, w) in enumerate([(48, 64)] * 5 + [(96, 128)] * 4):  # the camera came back in another mode
        y, u, v = planes_from_rgb(np.full((h, w, 3), (200, 80, 40), np.uint8), "bt601", full_range=True)
        sink.write(Picture(y=y, index=i, u=u, v=v, matrix="bt601", full_range=True))
    sink.close()
    counts = {}
    for part in sorted(tmp_path.glob("rec*.mp4")):
        with av.open(str(part)) as c:
            counts[part.name] = [(f.height, f.width) for f in c.decode(video=0)]
    assert counts == {"rec.mp4": [(48, 64)] * 5, "rec_001.mp4": [(96, 128)] * 4}  # before: rec.mp4 was replaced


def test_a_full_disk_at_the_end_of_a_recording_is_reported_and_leaves_no_broken_file(tmp_path):
    from realtime_color.media.frames import Picture, planes_from_rgb
    from realtime_color.media.sinks import RecordingSink
    from realtime_color.media.video import VideoError

    class FullDisk:  # the container runs out of space while writing its index
        def __init__(self, container):
            self.container = container

        def mux(self, packets):
            return self.container.mux(packets)

        def close(self):
            self.container.close()
            raise OSError(28, "No space left on device")

    sink = RecordingSink(tmp_path / "rec.mp4")
    y, u, v = planes_from_rgb(np.full((48, 64, 3), 90, np.uint8), "bt601", full_range=True)
    for i in range(3):
        sink.write(Picture(y=y, index=i, u=u, v=v, matrix="bt601", full_range=True))
    sink.sink.container = FullDisk(sink.sink.container)
    with pytest.raises(VideoError, match="cannot finish .*rec.mp4: No space left on device"):
        sink.close()  # reported, never taken for "no frame at all"
    assert list(tmp_path.iterdir()) == []


def _x264_settings(path) -> str:
    """The settings line libx264 writes into the first packet of its stream (an SEI)."""
    with av.open(str(path)) as c:
        data = bytes(next(p for p in c.demux(video=0) if p.size))
    return data[data.index(b"x264 - core") :].split(b"\x00")[0].decode("ascii", "replace")


def test_recordings_take_codec_crf_and_preset_one_camera_and_several(tmp_path, random_checkpoint):
    from realtime_color.media.synth import write_clip

    clips = [write_clip(tmp_path / f"cam{i}.mp4", seconds=1.0, width=160, height=96, audio=False) for i in range(2)]
    common = ["--duration", "2", "--model", random_checkpoint, "--crf", "30", "--preset", "ultrafast"]
    r = runner.invoke(app, ["stream", str(clips[0]), "--out", str(tmp_path / "one.mp4"), *common])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["stream", *map(str, clips), "--out", str(tmp_path / "rec" / "{name}.mp4"), *common])
    assert r.exit_code == 0, r.output
    for rec in [tmp_path / "one.mp4", tmp_path / "rec" / "cam0.mp4", tmp_path / "rec" / "cam1.mp4"]:
        settings = _x264_settings(rec)
        assert "crf=30.0" in settings and "subme=0" in settings, settings  # ultrafast: no subpixel search
    default = runner.invoke(app, ["stream", str(clips[0]), "--out", str(tmp_path / "d.mp4"), *common[:4]])
    assert default.exit_code == 0 and "crf=20.0" in _x264_settings(tmp_path / "d.mp4")  # recordings' default
    assert "subme=2" in _x264_settings(tmp_path / "d.mp4")  # veryfast
    r = runner.invoke(app, ["stream", str(clips[0]), "--out", str(tmp_path / "x.mp4"), "--preset", "quick"])
    assert r.exit_code == 2 and "--preset 'quick' is not an x264/x265 preset" in " ".join(r.output.split())
    assert not (tmp_path / "x.mp4").exists()
