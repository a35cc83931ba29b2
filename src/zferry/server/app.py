"""The FastAPI application: `create_app(settings, clock=...)`.

Errors are JSON `{"error": ..., "hint": ...}`; the token check wraps everything (auth.py); JSON
bodies are limited to `max_json_bytes`, only the receive endpoint takes a stream of any size.
"""

from __future__ import annotations

import time
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from zferry import __version__
from zferry.server.auth import TokenAuth
from zferry.server.errors import ApiError
from zferry.server.routes import router
from zferry.server.service import Service
from zferry.server.settings import ServerSettings
from zferry.server.tasks import Clock
from zferry.server.zfshost import ZfsHost


def create_app(settings: ServerSettings, clock: Clock = time.time, zfs_host: Optional[ZfsHost] = None) -> FastAPI:
    """The API for `settings`; `clock` gives task times (tests inject their own)."""
    app = FastAPI(
        title="zferry-server",
        version=__version__,
        description="Replicate ZFS datasets over HTTP: send, receive, replicate as background tasks.",
    )
    app.state.service = Service(settings, clock, zfs_host)
    app.include_router(router)
    public: tuple[tuple[str, str], ...] = ()
    try:
        from zferry.server import status_page  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        pass
    else:
        app.include_router(status_page.router)
        public = status_page.PUBLIC
    _error_handlers(app)
    app.add_middleware(TokenAuth, token=settings.token, public=public)
    return app


def _error(status: int, error: str, hint: str) -> JSONResponse:
    return JSONResponse({"error": error, "hint": hint}, status_code=status)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return _error(400, f"invalid request: {details}", "see /docs for the request's fields")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        hints = {404: "see /docs for the endpoints", 405: "see /docs for the methods of this path"}
        return _error(error.status_code, str(error.detail), hints.get(error.status_code, ""))
