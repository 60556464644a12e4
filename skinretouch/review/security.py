"""Who may talk to the review server: the holder of its token, from its own page.

Every request needs the access token: in the ``token`` query parameter of the printed URL
(which then sets a same-site cookie and redirects to drop it from the address bar), in that
cookie, or as ``Authorization: Bearer``. A state-changing request must also be a POST with a
JSON body, the CSRF token in ``X-CSRF-Token``, and no sign of coming from another site
(``Sec-Fetch-Site`` other than same-origin/none, or an ``Origin`` not this server's).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["AccessGuard", "Secrets", "is_loopback"]

SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Secrets:
    """The access token (in the URL) and the CSRF token (in the page)."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: nothing else on the network can connect."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AccessGuard:
    """ASGI middleware enforcing the token on every request and CSRF rules on POSTs."""

    def __init__(self, app: ASGIApp, *, keys: Secrets, cookie_name: str) -> None:
        self.app = app
        self.keys = keys
        self.cookie_name = cookie_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        method = scope["method"]
        from_query = _same(query.get("token"), self.keys.token)
        if not (from_query or self._has_cookie(headers) or self._has_bearer(headers)):
            await _refuse(401, "access token required: open the URL that `skinretouch review` printed")(scope, receive, send)
            return
        if method not in SAFE_METHODS:
            problem = self._cross_site_problem(scope, headers)
            if problem:
                await _refuse(403, problem)(scope, receive, send)
                return
        elif from_query and scope["path"] == "/":
            # Trade the token in the address bar for a cookie this site alone sends.
            rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
            response = RedirectResponse("/" + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(self.cookie_name, self.keys.token, httponly=True, samesite="strict", path="/")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _has_cookie(self, headers: Headers) -> bool:
        for chunk in headers.getlist("cookie"):
            for pair in chunk.split(";"):
                name, _, value = pair.strip().partition("=")
                if name == self.cookie_name and _same(value, self.keys.token):
                    return True
        return False

    def _has_bearer(self, headers: Headers) -> bool:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and _same(value.strip(), self.keys.token)

    def _cross_site_problem(self, scope: Scope, headers: Headers) -> str | None:
        if scope["method"] != "POST":
            return "only GET and POST are served"
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return f"cross-site request refused (Sec-Fetch-Site: {site})"
        origin = headers.get("origin")
        if origin is not None:
            expected = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
            if origin != expected:
                return f"cross-site request refused (Origin {origin} is not {expected})"
        if not _same(headers.get("x-csrf-token"), self.keys.csrf):
            return "missing or wrong X-CSRF-Token header"
        if headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return "state-changing requests must send JSON"
        return None


def _same(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


def _refuse(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(json.dumps({"error": message}), status_code=status, media_type="application/json")
