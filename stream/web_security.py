"""Who may talk to ``dfstream serve``: the token, the Host and Origin rules, and the headers every answer carries.

- **Token.** Every route needs it when one is set. A page opened as ``/?token=…`` gets it back as an
  HttpOnly, SameSite=Strict cookie, so the page's own script and media requests carry it without the
  token in each URL; API clients send ``Authorization: Bearer …``. A bare ``Authorization: <token>``
  is refused, and tokens under 16 characters are refused at start-up.
- **Host and Origin.** Without a token the server listens on loopback only, and answers only to a
  loopback ``Host`` (``127.0.0.1``, ``localhost``, ``[::1]``, with any port): a remote page that made
  a name resolve to 127.0.0.1 (DNS rebinding) gets 403. With or without a token, a request whose
  ``Origin`` is not the server's own is refused (cross-site requests, ``text/plain`` form posts).
- **Headers.** A content security policy (own origin only, no framing), ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer`` and ``X-Content-Type-Options: nosniff`` on every answer.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from dfstream.stream.contract.exceptions import DfstreamError

TOKEN_COOKIE = "dfstream_token"
MIN_TOKEN_LENGTH = 16
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
                                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def check_token(token: str | None) -> None:
    """A token short enough to guess protects nothing."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise DfstreamError(f"the token must be at least {MIN_TOKEN_LENGTH} characters (it has {len(token)}); "
                            "make one with: python -c 'import secrets; print(secrets.token_urlsafe(24))'")


def host_name(host_header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8080`` → ``::1``)."""
    return urlsplit(f"//{host_header}").hostname or ""


def same_origin(origin: str, host_header: str) -> bool:
    """Whether ``Origin`` names the server the request reached (scheme http, same host and port)."""
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()


def _refusal(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=SECURITY_HEADERS)


def _given_token(request: web.Request) -> tuple[str | None, bool]:
    """The token the request carries and whether it came in the URL (then it becomes a cookie)."""
    if "token" in request.query:
        return request.query["token"], True
    auth = request.headers.get("Authorization")
    if auth is not None:
        return (auth[len("Bearer "):] if auth.startswith("Bearer ") else None), False
    return request.cookies.get(TOKEN_COOKIE), False


def security_middleware(token: str | None) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if not token and host_name(host) not in LOOPBACK_HOSTS:
            return _refusal(403, "this server answers loopback names only (set a token to serve others)")
        origin = request.headers.get("Origin")
        if origin is not None and not same_origin(origin, host):
            return _refusal(403, "cross-origin requests are refused")
        from_url = False
        if token:
            given, from_url = _given_token(request)
            if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                return _refusal(401, "missing or wrong token")
        response = await handler(request)
        response.headers.update(SECURITY_HEADERS)
        if from_url:
            response.set_cookie(TOKEN_COOKIE, token or "", httponly=True, samesite="Strict", path="/")
        return response

    return guard
