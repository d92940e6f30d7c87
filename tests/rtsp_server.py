"""A real RTSP server for the tests and the soak script: GStreamer's gst-rtsp-server on 127.0.0.1.

Run with the system Python that has GStreamer's introspection bindings (Debian: python3-gi,
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{good,ugly,bad}); the project's venv does not
need them:

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --path /cam [--size 640x360] [--fps 30]
    /usr/bin/python3 tests/rtsp_server.py --port 8554 --path /push --record out.mkv

Play mode serves a generated live H.264 scene (a moving ball over a gradient) to every client.
Record mode accepts RTSP ANNOUNCE/RECORD (a client pushing H.264) and writes what arrives to a
Matroska file, so push output can be checked end to end. "ready" is printed once the port
listens; SIGTERM/SIGINT stop it (SIGKILL is what the fault tests use: a camera that loses power).

Imported (by the tests and tools/soak_rtsp.py, under any Python), it gives ``RtspServer``, which
runs this file in a process of its own, and ``rtsp_missing()``, which says why it cannot run here.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-gi; a venv does not see its bindings
ELEMENTS = ("videotestsrc", "x264enc", "rtph264pay", "rtph264depay", "h264parse", "matroskamux")
PROBE = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
    "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
    f"print(' '.join(e for e in {ELEMENTS!r} if Gst.ElementFactory.find(e) is None))"
)


def rtsp_missing() -> str | None:
    """Why the server cannot run on this machine (None when it can)."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found"
    r = subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True)
    if r.returncode:
        return "GStreamer's RTSP server is not installed (apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi)"
    if r.stdout.strip():
        return f"GStreamer elements missing: {r.stdout.strip()} (gstreamer1.0-plugins-good/-ugly/-bad)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """This server in its own process, killed (SIGKILL: a camera losing power), frozen (SIGSTOP:
    a stalled stream) and restarted on the same port."""

    def __init__(self, port: int, path: str = "/cam", size: str = "320x180", fps: int = 15, record=None):
        self.port, self.path, self.size, self.fps, self.record = port, path, size, fps, record
        self.proc: subprocess.Popen | None = None
        self.url = f"rtsp://127.0.0.1:{port}{path}"

    def start(self, size: str | None = None, record=None) -> None:
        args = [SYSTEM_PYTHON, str(Path(__file__).resolve()), "--port", str(self.port), "--path", self.path]
        args += ["--size", size or self.size, "--fps", str(self.fps)]
        if record or self.record:
            args += ["--record", str(record or self.record)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"the RTSP server did not start: {self.proc.stderr.read()}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen process must be able to die
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def freeze(self, on: bool) -> None:
        self.proc.send_signal(signal.SIGSTOP if on else signal.SIGCONT)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/cam")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--record", default=None, help="accept RECORD and write the pushed stream here (.mkv)")
    ap.add_argument("--pattern", default="ball", help="videotestsrc pattern")
    a = ap.parse_args()

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    width, height = (int(v) for v in a.size.split("x"))
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    factory = GstRtspServer.RTSPMediaFactory()
    if a.record:
        factory.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
        factory.set_launch(
            f"( rtph264depay name=depay0 ! h264parse ! matroskamux ! filesink location={a.record} sync=false )"
        )
        factory.set_latency(100)
    else:
        factory.set_launch(
            f"( videotestsrc is-live=true pattern={a.pattern} "
            f"! video/x-raw,width={width},height={height},framerate={a.fps}/1,format=I420 "
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 "
            "! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        factory.set_shared(True)  # one encoder for every client, as a camera has
    server.get_mount_points().add_factory(a.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{a.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()

    def stop(*_):
        loop.quit()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
