"""The live web preview: MJPEG over HTTP, one camera or a grid of many, each with its state.

    /                       a page with every camera (one camera: just its picture)
    /stream.mjpg            the first camera as multipart/x-mixed-replace MJPEG
    /frame.jpg, /status     its latest picture; {"state": "live" | "reconnecting" | ...}
    /cam/NAME/              one camera's page; /cam/NAME/stream.mjpg, /frame.jpg, /status likewise

Bound to the address given (127.0.0.1 unless the user names another). Every request is checked
by ``guard.Guard``: its Host header must name this server (127.0.0.1, localhost, the address it is
bound to, or a name allowed with --allow-host), so a web page cannot reach the camera through DNS
rebinding; served beyond 127.0.0.1, the token printed with the URL is required too (in the URL,
or the cookie the page sets). Each camera is a ``Channel``, a sink with ``write(picture)``; the
server lives until ``close``.
"""

from __future__ import annotations

import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

from .frames import Picture
from .guard import TOKEN_PARAM, Guard

STYLE = (
    "body{margin:0;background:#111;color:#ddd;font:14px sans-serif}"
    ".grid{display:flex;flex-wrap:wrap;gap:4px;justify-content:center}"
    "figure{margin:0}img{display:block;max-width:100%;max-height:90vh;margin:auto}"
    ".grid img{max-width:48vw;max-height:45vh}"
)
STATUS_JS = (
    "<script>setInterval(()=>document.querySelectorAll('[data-status]').forEach(e=>fetch(e.dataset.status)"
    ".then(r=>r.json()).then(s=>{e.textContent=s.state}).catch(()=>{})),1000)</script>"
)


class Channel:
    """One camera's picture and state on the server (a sink)."""

    def __init__(self, server: MjpegServer, name: str):
        self.server, self.name = server, name
        self.jpeg: bytes | None = None
        self.seq = 0
        self.state = "connecting"

    def set_state(self, state: str) -> None:
        """What the page says under the picture: live, connecting, reconnecting (the last picture stays)."""
        self.state = state

    def write(self, pic: Picture) -> None:
        import cv2

        ok, buf = cv2.imencode(".jpg", pic.to_bgr(), [cv2.IMWRITE_JPEG_QUALITY, self.server.quality])
        if ok:
            with self.server.cond:
                self.jpeg, self.seq = buf.tobytes(), self.seq + 1
                self.server.cond.notify_all()

    def close(self, complete: bool = True) -> None:
        self.server.release(self)


class MjpegServer:
    """The HTTP server; ``channel(name)`` adds a camera. Used as a sink itself, it is its first channel."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        quality: int = 80,
        allowed_hosts: tuple[str, ...] = (),
        token: str | None = None,
    ):
        self.quality = quality
        self.cond = threading.Condition()
        self.closed = False
        self.channels: dict[str, Channel] = {}
        self._users = 0
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))  # OSError: the port is taken
        self.httpd.daemon_threads = True
        self.guard = Guard.for_address(host, self.httpd.server_address[1], allowed_hosts, token=token)
        self.url = self.guard.url("/")  # with ?token=... when one is needed
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="rtcolor-http", daemon=True)
        self.thread.start()

    def channel(self, name: str) -> Channel:
        with self.cond:
            ch = self.channels.setdefault(name, Channel(self, name))
            self._users += 1
            return ch

    def release(self, channel: Channel) -> None:
        """A camera's outputs are closed; the server stops when the last one is."""
        with self.cond:
            self._users -= 1
            last = self._users <= 0
        if last:
            self.close()

    # The single-camera use (``--out http://...`` with one source): the server is its own sink.
    def _first(self) -> Channel:
        with self.cond:
            if not self.channels:
                self.channels[""] = Channel(self, "")
            return next(iter(self.channels.values()))

    def set_state(self, state: str) -> None:
        self._first().set_state(state)

    def write(self, pic: Picture) -> None:
        self._first().write(pic)

    @property
    def seq(self) -> int:
        return self._first().seq

    def close(self, complete: bool = True) -> None:
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def page(self, names: list[str]) -> bytes:
        figures = []
        q = f"?{TOKEN_PARAM}={quote(self.guard.token)}" if self.guard.token else ""
        for name in names:
            base = f"/cam/{quote(name)}/" if name else "/"
            label = html.escape(name or "rtcolor live preview")
            figures.append(
                f"<figure><img src='{base}stream.mjpg{q}' alt='{label}'><figcaption>{label}: "
                f"<span id=state data-status='{base}status{q}'>connecting</span></figcaption></figure>"
            )
        body = f"<div class=grid>{''.join(figures)}</div>" if len(names) > 1 else "".join(figures)
        return (
            f"<!doctype html><html><head><title>rtcolor live</title><style>{STYLE}</style></head>"
            f"<body>{body}{STATUS_JS}</body></html>"
        ).encode()


def _handler(server: MjpegServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep the terminal for our own telemetry
            pass

        def do_GET(self):  # noqa: N802 - http.server's naming
            refused = server.guard.check(self.headers, self.path)
            if refused is not None:  # a foreign Host (DNS rebinding), a foreign Origin, no token
                self._send(refused[0], "text/plain; charset=utf-8", refused[1].encode())
                return
            path = self.path.split("?")[0]
            if path.startswith("/cam/"):
                name, _, rest = unquote(path[len("/cam/") :]).partition("/")
                ch = server.channels.get(name)
            else:
                ch, rest = (server._first() if path != "/" and path != "/index.html" else None), path.lstrip("/")
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", server.page(list(server.channels) or [""]))
            elif ch is None:
                self._send(404, "text/plain", b"no such camera")
            elif rest in ("", "index.html"):
                self._send(200, "text/html; charset=utf-8", server.page([ch.name]))
            elif rest == "status":
                self._send(200, "application/json", json.dumps({"state": ch.state}).encode())
            elif rest == "frame.jpg":
                with server.cond:
                    server.cond.wait_for(lambda: ch.jpeg is not None or server.closed, 5.0)
                    data = ch.jpeg
                self._send(200, "image/jpeg", data) if data else self._send(503, "text/plain", b"no frame")
            elif rest == "stream.mjpg":
                self._stream(ch)
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, code, ctype, body):
            self.send_response(code)
            cookie = server.guard.cookie()
            if cookie and code < 400:
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _stream(self, ch: Channel):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seen = -1
            try:
                while not server.closed:
                    with server.cond:
                        server.cond.wait_for(lambda s=seen: ch.seq != s or server.closed, 1.0)
                        data, seen = ch.jpeg, ch.seq
                    if data is None:
                        continue
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                    self.wfile.write(head.encode() + data + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the viewer went away

    return Handler
