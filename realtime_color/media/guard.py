"""Who may talk to rtcolor's local web servers (the live preview, the hints editor): Host, Origin, token.

A server on 127.0.0.1 is still reachable from any web page the user opens: the page's script asks
for ``http://evil.example:8080/`` after the attacker's DNS has pointed ``evil.example`` at
127.0.0.1 (DNS rebinding), and the browser sends ``Host: evil.example``. Checking the Host header
against the names this server is really known by stops that. Served beyond 127.0.0.1, anyone on
the network can connect directly, so a secret token printed with the URL is required as well.
A request that changes state (POST) from a page of another origin is refused by its Origin header.

API (all pure, stdlib only; each ``check_*`` returns ``None`` when allowed, else a short reason
the server sends back with a 4xx status)::

    guard = Guard.for_address(host, port, allowed_hosts=("mybox.lan",), token=None)
        # token=None: a fresh one when host is not loopback, none needed on 127.0.0.1/::1/localhost;
        # token="..." forces that token; Guard(..., require_token=True) forces one on loopback too.
    guard.url(path="/")          -> "http://127.0.0.1:8080/?token=..." (the URL to print)
    guard.check_host(host_header)             -> None | "reason"   (403)
    guard.check_origin(origin_header)         -> None | "reason"   (403; None header is allowed)
    guard.check_token(query_token, cookie_or_header_token) -> None | "reason"   (401)
    guard.check(headers, path)  -> (status, reason) | None   # all three in one call, for a handler
    guard.cookie()              -> a Set-Cookie value so the page's own sub-requests carry the token

    new_token() -> str            a URL-safe 128-bit random token (secrets.token_urlsafe)
    same_token(a, b) -> bool      constant-time comparison (hmac.compare_digest), False on None
    is_loopback(host) -> bool     127.0.0.0/8, ::1, "localhost"

Names in ``allowed_hosts`` are compared case-insensitively, with or without the port; an IP literal
the server is bound to is always allowed, and so is ``localhost`` when bound to loopback. Bound to
every interface (0.0.0.0 or ::), any IP literal is allowed (a rebinding attack needs a name, and the
token is required there), and so is this machine's host name.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

TOKEN_PARAM = "token"  # the query parameter, the cookie and (as X-Rtcolor-Token) the header name
TOKEN_HEADER = "X-Rtcolor-Token"
COOKIE_NAME = "rtcolor_token"


def new_token() -> str:
    """A fresh URL-safe token with 128 bits of randomness."""
    return secrets.token_urlsafe(16)


def same_token(given: str | None, expected: str | None) -> bool:
    """True when both are set and equal; the comparison takes the same time wherever they differ."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or the name localhost (what only this machine can reach)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, str | None]:
    """``"Example.org:8080"`` -> ``("example.org", "8080")``; IPv6 ``"[::1]:80"`` -> ``("::1", "80")``."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        return name, port or None
    if value.count(":") == 1:
        name, _, port = value.partition(":")
        return name, port or None
    return value, None  # a bare name, or an unbracketed IPv6 address


@dataclass
class Guard:
    """The Host names, the port and the token (if any) a server accepts."""

    host: str
    port: int
    allowed_hosts: tuple[str, ...] = ()
    token: str | None = None
    names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        names = {self.host.strip("[]").lower(), *(split_host(h)[0] for h in self.allowed_hosts)}
        if is_loopback(self.host) or self.wildcard:
            names |= {"localhost", "127.0.0.1", "::1"}
        if self.wildcard:
            names.add(socket.gethostname().lower())
        self.names = frozenset(n for n in names if n and n not in ("0.0.0.0", "::"))

    @property
    def wildcard(self) -> bool:
        """Bound to every interface (0.0.0.0, ::)."""
        return self.host.strip("[]") in ("0.0.0.0", "::", "")

    @classmethod
    def for_address(
        cls,
        host: str,
        port: int,
        allowed_hosts: Iterable[str] = (),
        token: str | None = None,
        require_token: bool = False,
    ) -> Guard:
        """The guard for a server bound to ``host:port``: a token is made unless it serves loopback only."""
        if token is None and (require_token or not is_loopback(host)):
            token = new_token()
        return cls(host, int(port), tuple(allowed_hosts), token)

    def url(self, path: str = "/", shown_host: str | None = None) -> str:
        """The address to print for the user, with the token when one is needed."""
        name = shown_host or self.host
        if name in ("0.0.0.0", "::", ""):
            name = socket.gethostname()
        if ":" in name and not name.startswith("["):
            name = f"[{name}]"
        query = f"?{TOKEN_PARAM}={self.token}" if self.token else ""
        return f"http://{name}:{self.port}{path}{query}"

    def check_host(self, host_header: str | None) -> str | None:
        """None when the Host header names this server (any of its names, with its port or none)."""
        if not host_header:
            return "a Host header is required"
        name, port = split_host(host_header)
        if name not in self.names and not (self.wildcard and _is_ip(name)):
            return f"Host {host_header!r} is not this server's (allowed: {', '.join(sorted(self.names))})"
        if port is not None and port != str(self.port):
            return f"Host {host_header!r} names another port (this server is on {self.port})"
        return None

    def check_origin(self, origin_header: str | None) -> str | None:
        """None when there is no Origin (same-origin GETs, tools like curl) or it is this server itself."""
        if origin_header is None:
            return None
        if origin_header == "null":
            return "requests from an opaque origin are refused"
        parts = urlsplit(origin_header)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"Origin {origin_header!r} is not this server's"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        name = parts.hostname.lower()
        if (name not in self.names and not (self.wildcard and _is_ip(name))) or port != self.port:
            return f"Origin {origin_header!r} is not this server's"
        return None

    def check_token(self, *candidates: str | None) -> str | None:
        """None when no token is needed or any candidate (query, cookie, header) matches it."""
        if self.token is None:
            return None
        if any(same_token(c, self.token) for c in candidates):
            return None
        return "a valid token is required (use the URL printed when the server started)"

    def check(self, headers: Mapping[str, str], path: str) -> tuple[int, str] | None:
        """All checks for one request; ``(status, reason)`` to refuse it, None to serve it.

        ``headers`` is the request's headers (``http.server``'s ``self.headers`` works), ``path``
        the request target with its query string (the token may be ``?token=...``).
        """
        reason = self.check_host(headers.get("Host"))
        if reason:
            return 403, reason
        reason = self.check_origin(headers.get("Origin"))
        if reason:
            return 403, reason
        return (401, reason) if (reason := self.check_token(*self.tokens_in(headers, path))) else None

    @staticmethod
    def tokens_in(headers: Mapping[str, str], path: str) -> list[str | None]:
        """The token candidates a request carries: ``?token=``, the X-Rtcolor-Token header, the cookie."""
        query = parse_qs(urlsplit(path).query).get(TOKEN_PARAM, [None])
        cookie = None
        raw = headers.get("Cookie")
        if raw:
            try:
                jar = SimpleCookie(raw)
                cookie = jar[COOKIE_NAME].value if COOKIE_NAME in jar else None
            except CookieError:  # a malformed cookie header is just no cookie
                cookie = None
        return [query[0], headers.get(TOKEN_HEADER), cookie]

    def cookie(self) -> str | None:
        """A Set-Cookie value carrying the token (so images and fetches of the page pass), or None."""
        if self.token is None:
            return None
        return f"{COOKIE_NAME}={self.token}; Path=/; HttpOnly; SameSite=Strict"
