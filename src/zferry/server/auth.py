"""Every request needs the token: `Authorization: Bearer TOKEN`, or the `zferry_token` cookie (the status page).

The cookie counts for GET and HEAD only: nothing another page can make a browser post uses it.

An ASGI middleware, so that nothing (no route, no /docs, no body read) runs before the check;
the comparison takes constant time. The token comes from a file, never argv or the environment.
"""

from __future__ import annotations

import hmac
import json
import os
import stat
from collections.abc import Collection
from http.cookies import CookieError, SimpleCookie
from typing import Any, Callable, Optional

from zferry.errors import UsageError

COOKIE = "zferry_token"
MIN_TOKEN_LENGTH = 16
Scope = dict[str, Any]
App = Callable[..., Any]


def read_token(path: str) -> str:
    """The token in `path` (first line, stripped); refused when short or readable by others."""
    try:
        info = os.stat(path)
        with open(path, encoding="utf-8") as handle:
            token = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--token-file {path}: cannot read it ({error})") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"--token-file {path}: not a regular file")
    if info.st_mode & 0o077:
        raise UsageError(f"--token-file {path}: readable by others; chmod 600 {path}")
    if len(token) < MIN_TOKEN_LENGTH:
        raise UsageError(
            f"--token-file {path}: the token must have at least {MIN_TOKEN_LENGTH} characters; "
            "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > FILE"
        )
    return token


def presented_token(headers: list[tuple[bytes, bytes]]) -> Optional[str]:
    """The bearer token of a request, else its `zferry_token` cookie. Pure."""
    cookie_token = None
    for name, value in headers:
        text = value.decode("latin-1")
        if name == b"authorization":
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
        elif name == b"cookie":
            try:
                morsel = SimpleCookie(text).get(COOKIE)
            except CookieError:
                continue
            if morsel is not None:
                cookie_token = morsel.value
    return cookie_token


def token_matches(expected: str, given: Optional[str]) -> bool:
    """Constant-time comparison (no early exit on the first differing character)."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def _cookie_only_if_safe(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The headers whose token counts: the cookie only for GET and HEAD (the status page reads, never
    writes), as a browser also attaches it to a form posted by another page on this site (CSRF)."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    return headers if scope.get("method") in ("GET", "HEAD") else [h for h in headers if h[0] != b"cookie"]


class TokenAuth:
    """ASGI middleware: 401 with a JSON error unless the request carries the token."""

    def __init__(self, app: App, token: str, public: Collection[tuple[str, str]] = ()) -> None:
        self.app = app
        self.token = token
        self.public = frozenset(public)  # (method, path) let through without a token: the status page's login

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if (
            scope["type"] != "http"
            or (scope.get("method"), scope.get("path")) in self.public
            or token_matches(self.token, presented_token(_cookie_only_if_safe(scope)))
        ):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {"error": "missing or wrong token", "hint": "send the header 'Authorization: Bearer TOKEN'"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
