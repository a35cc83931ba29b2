"""The status page: `GET /` (HTML), `GET`/`POST /login`, `POST /logout`.

Logging in posts the server's token once; it comes back as the `zferry_token` cookie (HttpOnly,
so no script reads it; SameSite=Lax, Secure over https), which the token check (auth.py) accepts
like the bearer header, for GET and HEAD requests only (the page only reads): a page elsewhere,
even on this site, cannot start or cancel a task by making the browser post a form with it.
Lax rather than Strict: a login posted from elsewhere than this page, or a link to the page
from an appliance's dashboard, arrives by a cross-site navigation, and Strict would withhold the
cookie on the redirect to `/` that follows (back to the login form). Lax still withholds it from
every cross-site POST and DELETE; no GET endpoint changes anything.

`PUBLIC` lists the requests the token check lets through without a token: the login form, the
login and logout posts, and `/`, which itself redirects to the login form without a valid cookie.
Redirects are relative, so the page also works behind a proxy under a path prefix.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from zferry.server.auth import COOKIE, presented_token, token_matches
from zferry.server.page_assets import CSP
from zferry.server.page_render import render_login, render_page
from zferry.server.routes import in_thread, service_of
from zferry.server.service import Service

__all__ = ["PUBLIC", "render_page", "router"]

log = logging.getLogger("zferry")
router = APIRouter(include_in_schema=False)
PUBLIC = (("GET", "/"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"))
LOGIN_BODY_LIMIT = 4096
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def logged_in(request: Request) -> bool:
    """Whether the request carries the server's token (cookie or bearer header)."""
    return token_matches(service_of(request).settings.token, presented_token(request.scope.get("headers", [])))


def _redirect(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303, headers={"Cache-Control": "no-store"})


def _login_page(message: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(render_login(message), status_code=status, headers=HEADERS)


def current_status(service: Service) -> dict[str, Any]:
    """The status the page shows; when the ZFS host does not answer, the tasks with the reason."""
    try:
        return service.status()
    except Exception as error:  # the page still shows the tasks and says what is wrong
        now = service.store.clock()
        return {
            "pools": [],
            "tasks": [t.to_json(now) for t in service.store.recent()],
            "pairs": [p.to_json(now) for p in service.store.pairs()],
            "error": f"the ZFS host did not answer ({error}); check it and ssh, the page retries every 2 s",
        }


@router.get("/", response_class=HTMLResponse)
async def page(request: Request) -> Response:
    """The status page; without a valid cookie, a redirect to the login form."""
    if not logged_in(request):
        return _redirect("login")
    status = await in_thread(current_status, service_of(request))
    return HTMLResponse(render_page(status), headers=HEADERS)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    """The login form (straight to the page when already logged in)."""
    return _redirect("./") if logged_in(request) else _login_page()


async def _form(request: Request) -> dict[str, list[str]]:
    """The url-encoded form of the body: OverflowError past LOGIN_BODY_LIMIT bytes, ValueError past 8 fields."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > LOGIN_BODY_LIMIT:
            raise OverflowError(f"a login form has at most {LOGIN_BODY_LIMIT} bytes")
    return parse_qs(data.decode("utf-8", "replace"), max_num_fields=8)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the posted token; set it as the HttpOnly cookie and go to the page."""
    try:
        given = (await _form(request)).get("token", [""])[0].strip()
    except OverflowError as error:
        return _login_page(f"Refused: {error}.", 413)
    except ValueError as error:
        return _login_page(f"Refused: {error}.", 400)
    token = service_of(request).settings.token
    if not token_matches(token, given):
        client = request.client.host if request.client else "?"
        log.warning("status page: wrong token from %s", client)
        return _login_page("Wrong token. Use the first line of the server's --token-file.", 401)
    answer = _redirect("./")
    answer.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/")
    return answer


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Forget the cookie; back to the login form."""
    answer = _redirect("login")
    answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return answer
