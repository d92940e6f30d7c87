"""The editor's local web server: a fixed set of routes, each behind the token, Host and Origin checks.

    GET  /                       the page              GET /editor.js, /panels.js, /editor.css   its scripts, style
    GET  /api/state              the input (kind, size, frames, shots) and the hints
    PUT  /api/hints              the whole hint list (a hints document): checked, written atomically
    GET  /api/frame.jpg?frame=N&view=color|gray        a frame, colorized with the hints that hold on it
    GET  /api/placed?frame=N     where each hint is on frame N (followed through its shot) and if the gate holds it off
    GET  /api/suggest?frame=N&x=X&y=Y                  colors to offer for a hint at (X, Y)
    POST /api/colorize           {"output": NAME, "overwrite": false}: the real job into NAME
    GET  /api/job                the job's progress, its result and the CLI command that does the same

The server reads the user's picture and writes their hints file, so every request, the page's
images included, must carry the token printed with the URL (``?token=``, the X-Rtcolor-Token
header or the cookie the page sets); the Host header must name this server (DNS rebinding) and an
Origin, when sent, must be this server's (``media.guard``). Nothing is served from the file
system by path: the routes above are the only ones, matched exactly, so no path (encoded or not)
reaches a file. Request bodies have a fixed upper size.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from ..errors import RtcolorError
from ..guidance.hints import MAX_FILE_BYTES
from ..media.guard import Guard
from .session import jpeg

STATIC = {
    "/editor.js": "application/javascript; charset=utf-8",
    "/panels.js": "application/javascript; charset=utf-8",
    "/editor.css": "text/css; charset=utf-8",
}
MAX_SMALL_BODY = 4096  # bytes: a colorize request is a name and a flag
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page's URL holds the token: never send it elsewhere
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'; form-action 'none'",
}


def _static_files() -> dict[str, bytes]:
    folder = resources.files("realtime_color.editor") / "static"
    files = {"/": (folder / "index.html").read_bytes()}
    for route in STATIC:
        files[route] = (folder / route.lstrip("/")).read_bytes()
    return files


class BadRequest(RtcolorError):
    """A request the routes refuse, with its HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _number(query: dict, name: str, kind=float, lo: float = 0.0, hi: float = 1.0):
    raw = query.get(name, [None])[0]
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise BadRequest(400, f"{name} {raw!r} is not a number") from None
    if not lo <= value <= hi:  # NaN fails this too
        raise BadRequest(400, f"{name} {raw!r} must be between {lo:g} and {hi:g}")
    return value


class EditorServer:
    """Serves one session and its job on ``host:port`` (0: a free port) until ``close``."""

    def __init__(self, session, job, host: str = "127.0.0.1", port: int = 0, log=lambda m: None):
        self.session, self.job, self.log = session, job, log
        self.files = _static_files()
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))  # OSError: the port is taken
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.guard = Guard.for_address(host, self.port, require_token=True)  # a token even on 127.0.0.1
        self.url = self.guard.url("/")
        # The page names its script and style with the token: they load without relying on a cookie,
        # which browsers share between all ports of 127.0.0.1.
        self.files["/"] = self.files["/"].replace(b"__TOKEN__", self.guard.token.encode())
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="rtcolor-edit-http", daemon=True)

    def start(self) -> EditorServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.job.stop()
        if self.thread.is_alive():  # shutdown() waits for serve_forever, which never ran otherwise
            self.httpd.shutdown()
        self.httpd.server_close()
        self.session.close()  # a request still colorizing finishes first: the runtime is not torn down under it

    # Each route returns (status, content type, body).
    def get(self, path: str, query: dict) -> tuple[int, str, bytes]:
        s = self.session
        if path == "/":
            return 200, "text/html; charset=utf-8", self.files["/"]
        if path in STATIC:
            return 200, STATIC[path], self.files[path]
        if path == "/favicon.ico":
            return 204, "image/x-icon", b""
        if path == "/api/state":
            job = self.job
            return _json(
                200,
                {
                    **s.state(),
                    "job": job.status(),
                    "default_output": job.default_name(),
                    "command": job.command(job.out_dir / job.default_name()),
                },
            )
        if path == "/api/job":
            return _json(200, self.job.status())
        frame = _number(query, "frame", int, 0, max(0, s.media.frames - 1)) if "frame" in query else 0
        if path == "/api/frame.jpg":
            view = query.get("view", ["color"])[0]
            if view not in ("color", "gray"):
                raise BadRequest(400, f"view {view!r}: use color or gray")
            rgb = s.colorized(frame) if view == "color" else s.gray(frame)
            return 200, "image/jpeg", jpeg(rgb)
        if path == "/api/placed":
            return _json(200, {"frame": frame, "rev": s.rev, "placed": [p.to_json() for p in s.placed(frame)]})
        if path == "/api/suggest":
            return _json(200, s.suggest(frame, _number(query, "x"), _number(query, "y")))
        raise BadRequest(404, "not found")

    def put_or_post(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        if method == "PUT" and path == "/api/hints":
            rev = self.session.set_hints(body)
            return _json(200, {"rev": rev, "hints": len(self.session.hints)})
        if method == "POST" and path == "/api/colorize":
            try:
                doc = json.loads(body)
            except ValueError:
                raise BadRequest(400, "the colorize request is not JSON") from None
            if not isinstance(doc, dict):
                raise BadRequest(400, 'the colorize request is {"output": NAME, "overwrite": false}')
            status = self.job.start(doc.get("output"), bool(doc.get("overwrite", False)))
            return _json(409 if status["state"] == "exists" else 202, status)
        raise BadRequest(404 if path not in ("/api/hints", "/api/colorize") else 405, "not found")

    @staticmethod
    def body_limit(path: str) -> int:
        return MAX_FILE_BYTES if path == "/api/hints" else MAX_SMALL_BODY


def _json(status: int, doc: dict) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(doc).encode()


def _handler(server: EditorServer):
    class Handler(BaseHTTPRequestHandler):
        server_version = "rtcolor-edit"
        sys_version = ""
        timeout = 60  # seconds a connection may sit silent (a body that never comes, an idle keep-alive)

        def log_message(self, *args):  # the terminal is for the editor's own lines
            pass

        def do_GET(self):  # noqa: N802 - http.server's naming
            self._serve("GET")

        def do_PUT(self):  # noqa: N802
            self._serve("PUT")

        def do_POST(self):  # noqa: N802
            self._serve("POST")

        def do_DELETE(self):  # noqa: N802
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            refused = server.guard.check(self.headers, self.path)
            if refused:
                server.log(f"refused {method} {self.path.split('?')[0][:80]}: {refused[1]}")
                return self._send(refused[0], "text/plain; charset=utf-8", refused[1].encode())
            parts = urlsplit(self.path)
            try:
                query = parse_qs(parts.query, max_num_fields=16)
                if method == "GET":
                    status, ctype, body = server.get(parts.path, query)
                elif method in ("PUT", "POST"):
                    status, ctype, body = server.put_or_post(method, parts.path, self._body(parts.path))
                else:
                    raise BadRequest(405, f"{method} is not served")
            except BadRequest as e:
                return self._error(e.status, str(e))
            except RtcolorError as e:  # bad hints, a frame that cannot be decoded, an unwritable file
                server.log(f"error: {e}")
                return self._error(422, str(e))
            except ValueError as e:  # too many query fields, say
                return self._error(400, str(e).splitlines()[0][:200])
            except TimeoutError:
                self.close_connection = True  # a body that never came: nothing to answer
                return None
            except Exception as e:  # noqa: BLE001 - one line on the page and the terminal, never a traceback
                server.log(f"error: unexpected {type(e).__name__}: {e}")
                return self._error(500, f"unexpected {type(e).__name__}: {e}")
            cookie = server.guard.cookie() if parts.path == "/" else None
            self._send(status, ctype, body, cookie)

        def _body(self, path: str) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                raise BadRequest(411, "send the body with a Content-Length")
            raw = self.headers.get("Content-Length")
            if raw is None or not raw.isdigit():
                raise BadRequest(411, "a Content-Length is required")
            length, limit = int(raw), server.body_limit(path)
            if length > limit:
                self.close_connection = True  # its body is never read
                raise BadRequest(413, f"the request body is {length} bytes; at most {limit}")
            return self.rfile.read(length)

        def _error(self, status: int, message: str) -> None:
            self._send(status, "application/json", json.dumps({"error": message}).encode())

        def _send(self, status: int, ctype: str, body: bytes, cookie: str | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in SECURITY_HEADERS.items():
                    self.send_header(k, v)
                if cookie:
                    self.send_header("Set-Cookie", cookie)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the page went away (a reload in the middle of a picture)

    return Handler
