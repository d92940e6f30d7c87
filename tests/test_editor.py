"""rtcolor edit without a browser: its server refuses what it must (no token, a foreign Host or
Origin, paths outside its routes, oversized bodies, bad hints, outputs outside the input's folder)
and keeps the hints file whole; the command starts, prints its URL and stops cleanly."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.editor.carry import ShotCarrier
from realtime_color.editor.inputs import open_input
from realtime_color.editor.jobs import Job
from realtime_color.editor.server import EditorServer
from realtime_color.editor.session import Session
from realtime_color.guidance.hints import Hint, load_hints
from realtime_color.media.images import write_image
from realtime_color.video.temporal import TemporalConfig

from .conftest import scene

runner = CliRunner()


class FakeColorizer:
    """Stands in for the network where only the server is under test: hints paint their patch."""

    size = 64

    def colorize(self, frame, hints=()):
        rgb = np.repeat(frame[..., None], 3, -1) if frame.ndim == 2 else frame[..., :3].copy()
        for h in hints:
            y, x = int(h.y * (rgb.shape[0] - 1)), int(h.x * (rgb.shape[1] - 1))
            rgb[max(0, y - 4) : y + 5, max(0, x - 4) : x + 5] = h.rgb
        return rgb


def serve(tmp_path: Path, input_path, colorizer=None):
    hints = tmp_path / "hints.json"
    media = open_input(str(input_path), 64, TemporalConfig())
    session = Session(media, colorizer or FakeColorizer(), hints)
    session.create()
    job = Job(session, Path(input_path).parent if media.kind != "live" else tmp_path, [])
    return EditorServer(session, job, "127.0.0.1", 0).start(), hints


@pytest.fixture()
def picture(tmp_path):
    path = tmp_path / "photo.png"
    write_image(path, scene(96, 160))
    return path


@pytest.fixture()
def server(tmp_path, picture):
    srv, hints = serve(tmp_path, picture)
    yield srv, hints
    srv.close()


def request(srv, method, path, body=None, headers=None, token=True, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    h = {"Host": host or f"127.0.0.1:{srv.port}", **(headers or {})}
    if token:
        h["X-Rtcolor-Token"] = srv.guard.token
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


ENDPOINTS = ["/", "/editor.js", "/editor.css", "/api/state", "/api/job", "/api/frame.jpg?view=color",
             "/api/frame.jpg?view=gray", "/api/suggest?x=0.5&y=0.5", "/api/placed?frame=0"]  # fmt: skip


def test_every_endpoint_needs_the_token_a_host_of_its_own_and_its_own_origin(server):
    srv, _ = server
    for path in ENDPOINTS:
        assert request(srv, "GET", path)[0] == 200, path
        status, body = request(srv, "GET", path, token=False)
        assert status == 401 and b"token" in body, path
        status, body = request(srv, "GET", path, token=False, headers={"X-Rtcolor-Token": "wrong"})
        assert status == 401, path
        assert request(srv, "GET", path, host=f"evil.example:{srv.port}")[0] == 403, path  # DNS rebinding
        assert request(srv, "GET", path, headers={"Origin": "http://evil.example"})[0] == 403, path
    assert request(srv, "GET", f"/api/state?token={srv.guard.token}", token=False)[0] == 200  # the printed URL
    hints = json.dumps({"hints": []})
    for method, path in (("PUT", "/api/hints"), ("POST", "/api/colorize")):
        assert request(srv, method, path, hints, token=False)[0] == 401
        assert request(srv, method, path, hints, headers={"Origin": "http://evil.example"})[0] == 403
        assert request(srv, method, path, hints, host="attacker.test")[0] == 403


@pytest.mark.parametrize(
    "path",
    ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd",
     "/editor.js/../../../etc/passwd", "/static/index.html", "/api/../../photo.png", "/photo.png",
     "/hints.json", "/%2fetc%2fpasswd", "/api/frame.jpg/..%2f..%2fphoto.png", "/realtime_color/editor/server.py"],
)  # fmt: skip
def test_paths_outside_the_routes_serve_nothing(server, path):
    srv, _ = server
    status, body = request(srv, "GET", path)
    assert 400 <= status < 500
    assert b"root:" not in body and b"\x89PNG" not in body and b"import" not in body and len(body) < 200


def test_hints_from_the_page_are_checked_and_written_whole(server):
    srv, hints = server
    assert load_hints(hints).hints == ()  # created when missing
    doc = {"hints": [{"x": 0.25, "y": 0.5, "color": "#3060d0"}]}
    status, body = request(srv, "PUT", "/api/hints", json.dumps(doc), {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["hints"] == 1
    assert load_hints(hints).hints == (Hint(0.25, 0.5, "#3060d0"),)
    before = hints.read_bytes()
    for bad in ('{"hints": [{"x": 2, "y": 0.5, "color": "#3060d0"}]}', "not json", '{"hints": [{"x": 0.1}]}',
                '{"hints": [{"x": 0.1, "y": 0.1, "color": "#3060d0", "frame": 3}]}'):  # fmt: skip
        status, body = request(srv, "PUT", "/api/hints", bad)
        assert status == 422 and json.loads(body)["error"].startswith("the page's hints"), bad
    assert hints.read_bytes() == before  # nothing half-written
    for header, value, status in (("Content-Length", str(5 << 20), 413), ("Transfer-Encoding", "chunked", 411)):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)  # refused before any body is read
        conn.putrequest("PUT", "/api/hints")
        conn.putheader("X-Rtcolor-Token", srv.guard.token)
        conn.putheader(header, value)
        conn.endheaders()
        assert conn.getresponse().status == status
        conn.close()
    assert hints.read_bytes() == before
    status, body = request(srv, "GET", "/api/frame.jpg?view=color")
    assert status == 200 and body[:2] == b"\xff\xd8"


def test_bad_query_values_are_refused(server):
    srv, _ = server
    for path in ("/api/frame.jpg?frame=5", "/api/frame.jpg?frame=-1", "/api/frame.jpg?view=etc",
                 "/api/suggest?x=nan&y=0.5", "/api/suggest?x=2&y=0.5", "/api/suggest?x=a&y=0.5"):  # fmt: skip
        status, body = request(srv, "GET", path)
        assert status == 400 and "error" in json.loads(body), path


def test_colorize_writes_only_a_plain_name_beside_the_input_and_asks_before_replacing(server, picture):
    srv, hints = server
    os.link(picture, picture.parent / "link.png")  # a hard link to the input is the input
    before = set(picture.parent.iterdir())
    for name in ("../out.png", "/tmp/out.png", "sub/out.png", "..", ".hidden.png", "out.mp4", "photo.png",
                 "hints.json", "", None, "a\\b.png", "link.png"):  # fmt: skip
        status, body = request(srv, "POST", "/api/colorize", json.dumps({"output": name, "overwrite": True}))
        assert status == 422, name
    assert set(picture.parent.iterdir()) == before
    status, body = request(srv, "POST", "/api/colorize", json.dumps({"output": "out.png"}))
    assert status == 202
    job = _wait_job(srv)
    assert job["state"] == "done" and (picture.parent / "out.png").is_file()
    assert job["command"] == f"rtcolor image {picture} -o {picture.parent / 'out.png'} --hints {hints}"
    stamp = (picture.parent / "out.png").stat().st_mtime_ns
    status, body = request(srv, "POST", "/api/colorize", json.dumps({"output": "out.png"}))
    assert status == 409 and json.loads(body)["state"] == "exists"
    assert (picture.parent / "out.png").stat().st_mtime_ns == stamp
    assert request(srv, "POST", "/api/colorize", json.dumps({"output": "out.png", "overwrite": True}))[0] == 202
    assert _wait_job(srv)["state"] == "done"


def _wait_job(srv, seconds: float = 120.0) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = json.loads(request(srv, "GET", "/api/job")[1])
        if job["state"] != "running":
            return job
        time.sleep(0.2)
    raise AssertionError("the colorize job did not finish")


def test_frame_hints_hold_in_their_shot_only():
    class Media:  # a long video whose small frames were not kept: hints stay where they were put
        kind, frames, cuts, times = "video", 60, [0, 30], [i / 15 for i in range(60)]

        def shot(self, i):
            return 0 if i < 30 else 1

        def index_at(self, t):
            return int(t * 15)

        def small(self, i):
            return None

    hints = (Hint(0.1, 0.1, "#ff0000", frame=40), Hint(0.2, 0.2, "#00ff00"), Hint(0.3, 0.3, "#0000ff", time=0.5))
    carrier = ShotCarrier(Media())
    assert [(p.index, p.carried) for p in carrier.placed(hints, 0, 35)] == [(1, False), (0, True)]
    assert [(p.index, p.carried) for p in carrier.placed(hints, 0, 40)] == [(1, False), (0, False)]
    assert [p.index for p in carrier.placed(hints, 0, 3)] == [1, 2]


def test_bad_inputs_and_hints_files_are_one_line_each(tmp_path, picture):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    (tmp_path / "bad.json").write_text('{"hints": [{"x": 0.5, "y": 0.5, "colour": "#ff0000"}]}')
    cases = [
        ([str(tmp_path / "broken.png"), "--hints", str(tmp_path / "h.json")], "broken.png"),
        ([str(tmp_path / "missing.png"), "--hints", str(tmp_path / "h.json")], "missing.png"),
        ([str(tmp_path), "--hints", str(tmp_path / "h.json")], "not a folder"),
        ([str(picture), "--hints", str(tmp_path / "bad.json")], "unknown field 'colour'"),
        ([str(picture), "--hints", str(tmp_path / "h.txt")], "name a .json file"),
        ([str(picture), "--hints", str(tmp_path / "no" / "h.json")], "does not exist"),
        ([str(picture), "--hints", str(tmp_path / "h.json"), "-o", str(tmp_path / "out.mp4")], "-o"),
        (["9", "--hints", str(tmp_path / "h.json")], "live source 9"),  # no such camera
        ([str(picture), "--hints", str(tmp_path / "h.json"), "--port", str(taken.getsockname()[1])], "--port"),
    ]
    for args, needle in cases:
        result = runner.invoke(app, ["edit", *args, "--no-browser", "--backend", "onnxruntime"])
        text = " ".join(result.output.split())  # the terminal's line wrapping undone
        assert result.exit_code != 0, args
        assert needle in text and "Traceback" not in text, text
    taken.close()
    assert not (tmp_path / "h.json").exists()


def test_the_command_prints_its_url_and_stops_cleanly_on_ctrl_c(tmp_path, picture):
    hints = tmp_path / "photo.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    cmd = [sys.executable, "-m", "realtime_color.cli", "edit", str(picture), "--hints", str(hints), "--no-browser"]
    proc = subprocess.Popen([*cmd, "--backend", "onnxruntime"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)  # fmt: skip
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "?token=" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
        assert line.startswith("http://127.0.0.1:") and len(line.strip().split("token=")[1]) >= 20
        assert hints.is_file()
        url = line.strip().removeprefix("http://")
        hostport, _, rest = url.partition("/")
        conn = http.client.HTTPConnection(hostport, timeout=30)
        conn.request("GET", "/" + rest)
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    err = proc.stderr.read()
    assert code in (0, 130) and "Traceback" not in err, err
    assert load_hints(hints).hints == ()


def test_a_live_view_takes_frame_less_hints_and_shows_where_the_gate_holds_them_off(tmp_path):
    srv, hints = serve(tmp_path, "synth://?fps=15&size=320x180&gray=1")
    try:
        state = json.loads(request(srv, "GET", "/api/state")[1])
        assert state["kind"] == "live"
        assert state["command"] == f"rtcolor stream 'synth://?fps=15&size=320x180&gray=1' --hints {hints}"
        doc = {"hints": [{"x": 0.5, "y": 0.5, "color": "#3060d0"}, {"x": 0.1, "y": 0.1, "color": "#d06030"}]}
        assert request(srv, "PUT", "/api/hints", json.dumps(doc))[0] == 200
        assert len(load_hints(hints)) == 2
        placed = json.loads(request(srv, "GET", "/api/placed")[1])["placed"]
        assert [p["i"] for p in placed] == [0, 1] and all(isinstance(p["held"], bool) for p in placed)
        status, body = request(srv, "GET", "/api/frame.jpg?view=color")
        assert status == 200 and body[:2] == b"\xff\xd8"
        framed = {"hints": [{"x": 0.5, "y": 0.5, "color": "#3060d0", "frame": 3}]}
        status, body = request(srv, "PUT", "/api/hints", json.dumps(framed))
        assert status == 422 and "frame-less hints only" in json.loads(body)["error"]
        assert request(srv, "POST", "/api/colorize", json.dumps({"output": "x.mp4"}))[0] == 422
        assert len(load_hints(hints)) == 2
    finally:
        srv.close()
        srv.session.media.close()


def test_the_editor_runs_without_pytorch():
    code = (
        "import sys\n"
        "import realtime_color.cli.edit, realtime_color.editor.server, realtime_color.editor.jobs\n"
        "from realtime_color.editor import carry, inputs, session\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "[]"


def test_stopping_the_editor_during_a_colorize_run_leaves_no_file(tmp_path):
    from realtime_color.media.synth import write_clip
    from realtime_color.model.checkpoint import ModelFile
    from realtime_color.runtime.backends import open_backend
    from realtime_color.runtime.colorizer import Colorizer

    clip = write_clip(tmp_path / "reel.mp4", seconds=4.0, width=320, height=180, fps=15, gray=True, audio=False)
    ckpt = ModelFile.open(None)
    colorizer = Colorizer(open_backend("onnxruntime", ckpt, device="cpu"), size=64)
    srv, _ = serve(tmp_path, clip, colorizer)
    try:
        assert request(srv, "POST", "/api/colorize", json.dumps({"output": "out.mp4"}))[0] == 202
        srv.job.stop()  # what Ctrl-C does first
        assert srv.job.status()["state"] == "interrupted"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["hints.json", "reel.mp4"]
    finally:
        srv.close()
        srv.session.media.close()
