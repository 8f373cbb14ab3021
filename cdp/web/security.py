"""Who may read the explorer: loopback-only by default, a token when bound elsewhere.

- `is_loopback(host)`: 127.0.0.0/8, ::1 and `localhost` need no token; any other bind address
  does (`cdp serve` refuses to start without one).
- `TokenGate`: with a token set, every request must carry it: `Authorization: Bearer <token>`,
  or the session cookie set by opening any page once with `?token=<token>` (the answer then
  redirects to the same page without the token, so it does not stay in the address bar or
  history). Static assets (styles, scripts; no data) and `/healthz` are open.
- `Hardening`: refuses Host headers other than the served names when bound to loopback (a web
  page cannot reach the explorer through DNS rebinding), and adds headers: no caching of pages
  with personal data, no referrer, no framing, scripts from the explorer only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Iterable

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "cdp_session"
TOKEN_ENV = "CDP_SERVE_TOKEN"
MIN_TOKEN_LENGTH = 12
OPEN_PATHS = ("/static/", "/healthz")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class TokenGate:
    """ASGI middleware: every request (but static assets) must carry the token."""

    def __init__(self, app: ASGIApp, token: str, login_page: Callable[..., str]) -> None:
        self.app = app
        self.token = token
        # The cookie holds a value derived from the token, not the token itself.
        self.session = hmac.new(token.encode("utf-8"), b"cdp serve session",
                                hashlib.sha256).hexdigest()
        self.login_page = login_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        offered = request.query_params.get("token")
        if offered is not None:
            if _same(offered, self.token):
                url = request.url.remove_query_params("token")
                target = url.path + (f"?{url.query}" if url.query else "")
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(COOKIE, self.session, httponly=True, samesite="strict",
                                    path="/")
                await response(scope, receive, send)
                return
            await self._deny(request, scope, receive, send, wrong=True)
            return
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if (bearer and _same(bearer, self.token)) or _same(request.cookies.get(COOKIE, ""),
                                                           self.session):
            await self.app(scope, receive, send)
            return
        await self._deny(request, scope, receive, send, wrong=bool(bearer))

    async def _deny(self, request: Request, scope: Scope, receive: Receive, send: Send,
                    wrong: bool) -> None:
        response = HTMLResponse(self.login_page(path=request.url.path, wrong=wrong),
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


class Hardening:
    """ASGI middleware: Host check (when `allowed_hosts` is given) and security headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] | None = None) -> None:
        self.app = app
        self.allowed = {h.strip("[]").lower() for h in allowed_hosts} if allowed_hosts else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed is not None:
            host = Request(scope).headers.get("host", "")
            name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
            if name.lower() not in self.allowed:
                await PlainTextResponse("invalid Host header", status_code=400)(
                    scope, receive, send)
                return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"x-frame-options": b"DENY",
                    b"content-security-policy": CSP.encode(),
                }
                if not static:
                    extra[b"cache-control"] = b"no-store"
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
