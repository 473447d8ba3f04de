"""Upload routes refuse a missing, unknown, revoked or under-scoped API key from the request's
headers, before a byte of the body is read.

FastAPI parses a multipart form before it runs a route's dependencies, so the route's own
key check (app/auth.py) comes only after the whole upload has been received and spooled: a
caller without a key could make the server read hundreds of megabytes for a 401. This
middleware runs the same check first and leaves the caller in the request's state, where the
route's own check finds it instead of looking the key up again.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth import CALLER_STATE, Caller, ensure_scope, identify, presented_key
from app.config import Settings
from app.errors import OUTAGES, AppError, app_error_response, dependency_down_response
from app.openai_errors import openai_error
from models import Scope as KeyScope

# What the key check may raise: a refusal (401, 403), or the database being down (503).
REFUSALS: tuple[type[Exception], ...] = (AppError, *OUTAGES)


@dataclass(frozen=True)
class UploadRoute:
    """What an upload route needs of a key, and the shape its errors take."""

    scopes: tuple[KeyScope, ...]
    openai: bool = False  # errors in OpenAI's shape (app/openai_errors.py)


class UploadKeyMiddleware:
    """Answers 401/403 (or 503 while the database is down) to an upload whose key would be
    refused, without reading its body. With AUTH_ENABLED=false it is not installed."""

    def __init__(self, app: ASGIApp, settings: Settings, routes: Mapping[str, UploadRoute]) -> None:
        self.app = app
        self.settings = settings
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            caller = await self.check_key(scope, route.scopes)
        except REFUSALS as exc:
            response = refusal(Request(scope), exc, route)
            # The body is not wanted: close the connection rather than read the rest of it
            # to reach the next request (uvicorn closes after a `Connection: close` answer).
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER_STATE] = caller
        await self.app(scope, receive, send)

    async def check_key(self, scope: Scope, needed: tuple[KeyScope, ...]) -> Caller:
        db = scope["app"].state.db
        caller = await identify(db, presented_key(Headers(scope=scope)), self.settings)
        for each in needed:
            ensure_scope(caller, each)
        return caller


def refusal(request: Request, exc: Exception, route: UploadRoute) -> Response:
    """The answer the route itself would have given for `exc`."""
    if route.openai:
        return openai_error(request, exc)
    if isinstance(exc, AppError):
        return app_error_response(exc)
    return dependency_down_response(request, exc)
