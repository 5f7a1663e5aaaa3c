"""Who may use a dashboard: the one person holding its URL, from this machine, on purpose.

The server listens on loopback only, but every local user and every web page
open in any browser on the machine can reach loopback. So, as Jupyter does:

* the printed URL carries a random per-session token; the first visit trades
  it for an HttpOnly, SameSite=Strict cookie and is redirected to the same
  page without it (so it leaves no trace in history or a Referer), and every
  request after that needs the cookie;
* the Host header must name loopback, so a page on another origin cannot
  reach the server through DNS rebinding;
* a request that changes anything is a POST carrying ``X-Jobwarden-CSRF``
  with a second per-session value that only the dashboard's own pages hold
  (a custom header also forces a CORS preflight that is never granted);
* every response carries a strict Content-Security-Policy (own scripts only,
  nothing inline, no framing) and ``X-Content-Type-Options: nosniff`` (set
  by the app on every prepared response, streams and errors included).

None of these values is ever logged.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

__all__ = ["CSRF_HEADER", "SECURITY_HEADERS", "Session", "security_middleware"]

CSRF_HEADER: Final = "X-Jobwarden-CSRF"
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NOT_SIGNED_IN: Final = (
    "This dashboard needs the URL that `kubectl jobwarden dashboard` printed "
    "(it carries a one-session token)."
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, kw_only=True)
class Session:
    """One dashboard server's secrets: the URL token and the CSRF value, and its port."""

    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def cookie(self) -> str:
        """The cookie's name: one per port, as cookies ignore ports and dashboards may be two."""
        return f"jobwarden-dashboard-{self.port}"

    def url(self, path: str = "/") -> str:
        """The URL to print: the first visit signs the browser in."""
        return f"http://127.0.0.1:{self.port}{path}?token={self.token}"


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def host_allowed(host: str | None) -> bool:
    """Whether a Host header names loopback (any port: the socket itself is loopback)."""
    if not host:
        return False
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() in LOOPBACK_HOSTS


def _refuse(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


def security_middleware(session: Session) -> Middleware:
    """The aiohttp middleware enforcing every rule of the module docstring."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not host_allowed(request.headers.get("Host")):
            return _refuse(421, "This dashboard answers only to 127.0.0.1 or localhost.")
        token = request.query.get("token")
        if token is not None:
            if not _same(token, session.token) or request.method not in SAFE_METHODS:
                return _refuse(403, NOT_SIGNED_IN)
            query = {k: v for k, v in request.query.items() if k != "token"}
            target = request.rel_url.with_query(query) if query else request.rel_url.with_query({})
            redirect = web.Response(status=302, headers={"Location": str(target)})
            redirect.set_cookie(
                session.cookie, session.token, httponly=True, samesite="Strict", path="/"
            )
            return redirect
        if not _same(request.cookies.get(session.cookie), session.token):
            return _refuse(403, NOT_SIGNED_IN)
        if request.method not in SAFE_METHODS and not _same(
            request.headers.get(CSRF_HEADER), session.csrf
        ):
            return _refuse(403, f"Actions need the {CSRF_HEADER} header of this dashboard's pages.")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            # Answered here, so that the security headers go on errors too.
            return web.Response(status=exc.status, text=exc.text, content_type="text/plain")

    return middleware
