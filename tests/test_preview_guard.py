"""The live preview answers only requests that name it: a foreign Host header (DNS rebinding) or
Origin gets 403; served beyond 127.0.0.1 a request without the token printed with the URL gets 401."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import numpy as np
import pytest

from realtime_color.media.frames import picture_from_bgr
from realtime_color.media.preview import MjpegServer


def get(port: int, path: str, host: str | None, **headers) -> tuple[int, bytes, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_host=True)
    if host is not None:
        conn.putheader("Host", host)
    for k, v in headers.items():
        conn.putheader(k.replace("_", "-"), v)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body, dict(r.getheaders())


@pytest.fixture()
def loopback():
    server = MjpegServer("127.0.0.1", 0)
    server.write(picture_from_bgr(np.full((32, 48, 3), 128, np.uint8), 0))
    yield server, server.httpd.server_address[1]
    server.close()


def test_a_foreign_host_header_is_refused(loopback):
    server, port = loopback
    assert server.guard.token is None and server.url == f"http://127.0.0.1:{port}/"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        status, body, _ = get(port, "/frame.jpg", host)
        assert status == 200 and body[:2] == b"\xff\xd8", host  # a JPEG
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", None):
        for path in ("/", "/frame.jpg", "/stream.mjpg", "/status"):
            status, body, _ = get(port, path, host)
            assert status == 403 and b"\xff\xd8" not in body, (host, path)
    status, _, _ = get(port, "/status", f"127.0.0.1:{port}", Origin="http://evil.example")
    assert status == 403


def test_beyond_loopback_the_token_is_required():
    server = MjpegServer("0.0.0.0", 0, allowed_hosts=("mybox.lan",))
    try:
        server.write(picture_from_bgr(np.full((32, 48, 3), 128, np.uint8), 0))
        port = server.httpd.server_address[1]
        token = server.guard.token
        assert token and f"token={token}" in server.url
        for host in (f"127.0.0.1:{port}", f"mybox.lan:{port}"):
            assert get(port, "/frame.jpg", host)[0] == 401
            assert get(port, "/frame.jpg?token=wrong", host)[0] == 401
        assert get(port, f"/frame.jpg?token={token}", f"evil.example:{port}")[0] == 403
        printed = urlsplit(server.url)
        status, body, headers = get(port, f"{printed.path}?{printed.query}", f"mybox.lan:{port}")
        assert status == 200 and f"stream.mjpg?token={token}".encode() in body  # the page's own requests carry it
        assert "rtcolor_token=" in headers.get("Set-Cookie", "")
        status, body, _ = get(port, "/frame.jpg", f"127.0.0.1:{port}", Cookie=f"rtcolor_token={token}")
        assert status == 200 and body[:2] == b"\xff\xd8"
    finally:
        server.close()
