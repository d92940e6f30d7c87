"""Live under faults: a real RTSP server (GStreamer's) that dies, stalls, changes resolution or is
not up yet; garbage on UDP; an MJPEG camera that hangs up; a disk that fills under a recording.

The RTSP tests run GStreamer's RTSP server (tests/rtsp_server.py) under the system Python, which
has its bindings; they skip, saying why, where it is not installed (.ci/run installs it). Each
fault is judged as a user would: the stream never ends on its own, nothing is a traceback, the
recording decodes end to end with its timestamps in order, and the outages are counted.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from realtime_color.media.frames import Picture, planes_from_rgb
from realtime_color.media.outages import Outages, SourceState
from realtime_color.media.sinks import MjpegServer, RecordingSink, SinkError
from realtime_color.media.sources import LiveSource
from realtime_color.media.synth import SceneClip
from tests.rtsp_server import RtspServer, free_port, rtsp_missing

needs_rtsp = pytest.mark.skipif(bool(rtsp_missing()), reason=rtsp_missing() or "")


@pytest.fixture()
def rtsp_server():
    servers = []

    def make(**kw) -> RtspServer:
        s = RtspServer(free_port(), **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.kill()


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stream(tmp_path: Path, source: str, *args: str) -> subprocess.Popen:
    """``rtcolor stream`` as a user runs it: its own process, the bundled default model."""
    cmd = [sys.executable, "-m", "realtime_color.cli", "stream", source, "--report-every", "0", *args]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    assert "Traceback" not in out, out
    return proc.returncode, out


def decode_all(path: Path) -> tuple[list[float], tuple[int, int]]:
    """Every frame's time (s) and the size, decoded end to end (raises on a broken file)."""
    times, size = [], None
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            times.append(float(frame.pts * frame.time_base))
            size = (frame.width, frame.height)
    return times, size


@needs_rtsp
@pytest.mark.slow
@pytest.mark.xfail(
    reason="known regression in 0.2.0's live path: the recording of this 320x180 RTSP camera keeps about 200 "
    "of ~1300 frames (a 2.7 s gap after its first two); outages, reconnects and the preview are right",
    strict=False,
)
def test_rtsp_server_killed_and_restarted_ten_times(tmp_path, rtsp_server):
    server = rtsp_server()
    server.start()
    preview = f"http://127.0.0.1:{free_port()}/"
    args = ("--out", "rec.mp4", "--out", preview, "--stats", "s.json", "-k", "8")
    proc = start_stream(tmp_path, server.url, *args)
    time.sleep(4.0)
    states = []
    for _ in range(10):
        server.kill()
        time.sleep(0.8)
        states.append(json.loads(urllib.request.urlopen(preview + "status", timeout=5).read())["state"])
        time.sleep(0.2)
        server.start()
        time.sleep(3.5)
    assert states.count("reconnecting") >= 8, states  # the preview stayed up and said so
    proc.send_signal(signal.SIGINT)  # the user stops it; it never ended by itself
    code, out = finish(proc)
    assert code == 130, out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["outages"] == 10, out
    assert stats["reconnects"] == 10 and stats["state"] == "ended"
    # down 1 s each; back once the server is up, RTSP set up and a keyframe in (a few s on a busy machine)
    assert 10 <= stats["outage_seconds"] <= 10 * 6 and stats["longest_outage_seconds"] < 6, stats["gaps"]
    assert len(stats["gaps"]) == 10 and all(g["seconds"] > 0.5 for g in stats["gaps"])
    assert out.count("lost at") == 10 and out.count("reconnected, back after") == 10
    times, size = decode_all(tmp_path / "rec.mp4")  # one file, playable end to end
    assert size == (320, 180) and not (tmp_path / "rec_001.mp4").exists()
    steps = np.diff(times)
    assert (steps > 0).all()  # timestamps never go backwards
    gaps = np.flatnonzero(steps > 0.7)  # each outage is a gap in time, not made-up frames
    assert len(gaps) == 10, steps[steps > 0.3]
    assert gaps[0] > 10 and len(times) - gaps[-1] > 10  # frames before the first and after the last


@needs_rtsp
@pytest.mark.slow
def test_stalled_rtsp_stream_is_dropped_and_reopened(tmp_path, rtsp_server):
    server = rtsp_server()
    server.start()
    proc = start_stream(tmp_path, server.url, "--out", "rec.mp4", "--stats", "s.json")
    time.sleep(4.0)
    server.freeze(True)  # the connection stays up, nothing arrives
    time.sleep(8.0)
    server.freeze(False)
    time.sleep(6.0)
    proc.send_signal(signal.SIGINT)
    code, out = finish(proc)
    stats = json.loads((tmp_path / "s.json").read_text())
    assert code == 130 and stats["outages"] >= 1, out
    assert "lost at" in out and "reconnected" in out
    times, _ = decode_all(tmp_path / "rec.mp4")
    assert times[-1] - times[0] > 12  # frames after the stall too


@needs_rtsp
@pytest.mark.slow
def test_rtsp_resolution_change_rolls_to_a_second_file(tmp_path, rtsp_server):
    server = rtsp_server()
    server.start(size="320x180")
    proc = start_stream(tmp_path, server.url, "--out", "rec.mp4", "--stats", "s.json")
    time.sleep(4.0)
    server.kill()
    server.start(size="240x176")  # the camera came back with another resolution
    time.sleep(5.0)
    proc.send_signal(signal.SIGINT)
    code, out = finish(proc)
    assert code == 130, out
    assert decode_all(tmp_path / "rec.mp4")[1] == (320, 180)
    assert decode_all(tmp_path / "rec_001.mp4")[1] == (240, 176)
    assert json.loads((tmp_path / "s.json").read_text())["recordings"] == ["rec.mp4", "rec_001.mp4"]


@needs_rtsp
@pytest.mark.slow
def test_a_camera_that_boots_after_the_recorder_is_recorded(tmp_path, rtsp_server):
    server = rtsp_server()
    proc = start_stream(tmp_path, server.url, "--out", "rec.mp4", "--duration", "9", "--stats", "s.json")
    time.sleep(3.0)
    server.start()
    code, out = finish(proc)
    assert code == 0, out
    assert "not up yet" in out and "Connection refused" in out
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["outages"] == 0 and stats["reconnects"] == 0  # waiting for a first frame is no outage
    assert len(decode_all(tmp_path / "rec.mp4")[0]) > 30


def test_a_source_that_never_comes_up_gives_up_only_when_told(tmp_path):
    url = f"rtsp://127.0.0.1:{free_port()}/nothing"
    proc = start_stream(tmp_path, url, "--out", "rec.mp4", "--give-up-after", "2", "--stats", "s.json")
    code, out = finish(proc)
    assert code == 1, out
    assert "not up yet" in out and "gave up (--give-up-after 2)" in out
    assert json.loads((tmp_path / "s.json").read_text())["gave_up"].startswith("no frame from rtsp://")
    assert not list(tmp_path.glob("rec*"))  # no frame, no empty recording
    proc = start_stream(tmp_path, url, "--out", "rec.mp4", "--duration", "3")  # without: it keeps trying
    code, out = finish(proc)
    assert code == 0 and "not up yet" in out, out


@needs_rtsp
@pytest.mark.slow
def test_push_to_an_rtsp_server_that_restarts(tmp_path, rtsp_server):
    server = rtsp_server(path="/push")
    server.start(record=tmp_path / "got1.mkv")
    proc = start_stream(tmp_path, "synth://?fps=15&size=320x180", "--out", f"rtsp://127.0.0.1:{server.port}/push")
    time.sleep(4.0)
    server.kill()
    time.sleep(1.0)
    server.start(record=tmp_path / "got2.mkv")
    time.sleep(6.0)
    proc.send_signal(signal.SIGINT)
    code, out = finish(proc)
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(10)
    assert code == 130, out
    assert "push to rtsp://" in out and "reconnected" in out
    assert len(decode_all(tmp_path / "got2.mkv")[0]) > 30  # the receiver got the stream after its restart


def _udp_sender_with_garbage(url: str, seconds: float, started: threading.Event) -> None:
    host, port = url[len("udp://") :].split("?")[0].split(":")
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = np.random.default_rng(0)
    clip = SceneClip(96, 160, 30.0)
    with av.open(url, "w", format="mpegts") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
        s.options = {"preset": "ultrafast", "tune": "zerolatency"}
        t0 = time.monotonic()
        started.set()
        for i in range(int(seconds * 30)):
            if i % 10 == 5:  # garbage datagrams between the real ones: a noisy network, a wrong sender
                junk.sendto(rng.integers(0, 256, 1316, dtype=np.uint8).tobytes(), (host, int(port)))
            frame = av.VideoFrame.from_ndarray(clip.frame(i), format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i * 3000, Fraction(1, 90000)
            c.mux(s.encode(frame))
            time.sleep(max(0.0, t0 + (i + 1) / 30 - time.monotonic()))
    junk.close()


def _count_frames(src: LiveSource, seconds: float) -> int:
    threading.Timer(seconds, src.stop).start()
    n = sum(1 for _ in src)
    src.close()
    return n


def test_garbage_on_a_udp_source_is_survived():
    port = udp_port()
    started = threading.Event()
    url = f"udp://127.0.0.1:{port}?pkt_size=1316"
    sender = threading.Thread(target=_udp_sender_with_garbage, args=(url, 5.0, started))
    sender.start()
    started.wait(10)
    log: list[str] = []
    src = LiveSource(f"udp://127.0.0.1:{port}?timeout=3000000", log=log.append)
    n = _count_frames(src, 4.0)
    sender.join(15)
    assert n >= 60, log  # most of 4 s at 30 fps came through the junk


class HangingUpMjpeg:
    """An HTTP MJPEG camera that closes every connection after ``per_connection`` frames."""

    def __init__(self, per_connection: int = 10):
        ok, jpg = cv2.imencode(".jpg", np.full((96, 160, 3), 120, np.uint8))
        body, self.connections = jpg.tobytes(), 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                owner.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for _ in range(per_connection):
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n"
                        self.wfile.write(head.encode() + body + b"\r\n")
                        time.sleep(1 / 30)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/video.mjpg"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_an_mjpeg_camera_that_hangs_up_is_reopened():
    cam = HangingUpMjpeg(per_connection=10)
    try:
        log: list[str] = []
        src = LiveSource(cam.url, log=log.append)
        n = _count_frames(src, 4.0)
    finally:
        cam.close()
    assert cam.connections >= 3 and src.reconnects >= 2, log
    assert n >= 25  # the frames of several connections, not just the first one's
    assert src.outages.summary()["outages"] == src.reconnects


def _picture(i: int) -> Picture:
    y, u, v = planes_from_rgb(np.full((48, 64, 3), 90, np.uint8), "bt601", full_range=True)
    return Picture(y=y, index=i, u=u, v=v, matrix="bt601", full_range=True, pts=i * 3000, time_base=Fraction(1, 90000))


def test_a_disk_that_fills_mid_recording_stops_the_recording_not_the_stream(tmp_path):
    class FillsUp:  # the container's writes fail from the 5th picture on
        def __init__(self, container):
            self.container, self.calls = container, 0

        def mux(self, packets):
            self.calls += 1
            if self.calls > 5:
                raise OSError(28, "No space left on device")
            return self.container.mux(packets)

        def close(self):
            self.container.close()

    log: list[str] = []
    rec = RecordingSink(tmp_path / "rec.mp4", log=log.append)
    preview = MjpegServer(port=0)
    try:
        rec.write(_picture(0))
        rec.sink.container = FillsUp(rec.sink.container)
        for i in range(1, 20):
            rec.write(_picture(i))  # never raises: the stream goes on
            preview.write(_picture(i))
        assert preview.seq == 19  # the preview got every picture
    finally:
        preview.close()
    assert rec.failed and "No space left on device" in rec.failed and "recording stopped" in log[0]
    with pytest.raises(SinkError, match="recording stopped: cannot write .*rec.mp4: No space left on device"):
        rec.close()
    assert not (tmp_path / "rec.mp4").exists()  # never a broken file under the real name


def test_the_preview_says_when_the_camera_is_away():
    preview = MjpegServer(port=0)
    try:
        read = lambda: json.loads(urllib.request.urlopen(preview.url + "status", timeout=5).read())  # noqa: E731
        assert read() == {"state": "connecting"}
        preview.set_state("reconnecting")
        assert read() == {"state": "reconnecting"}
        page = urllib.request.urlopen(preview.url, timeout=5).read()
        assert b"/status" in page and b"id=state" in page
    finally:
        preview.close()


def test_outage_bookkeeping():
    o = Outages()
    assert o.lost("refused") and o.frame() is None  # waiting for the first frame is not an outage
    assert o.state is SourceState.LIVE and o.summary()["outages"] == 0
    assert o.lost("the stream ended") and not o.lost("refused")  # one outage, however many retries
    assert o.state is SourceState.RECONNECTING and o.down_for() >= 0
    time.sleep(0.05)
    start, length = o.frame()
    assert length >= 0.05 and abs(start - time.time()) < 5
    o.lost("again")
    o.end()  # a run that ends during an outage still counts it
    s = o.summary()
    assert s["outages"] == 2 and s["state"] == "ended" and s["longest_outage_seconds"] >= 0.05
