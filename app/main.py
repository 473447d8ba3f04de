"""The FastAPI application. Run with `uvicorn --factory app.main:create_app`."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.async_db import AsyncDatabase
from app.auth import hide_query_keys_in_access_log
from app.config import Settings, configure_logging, get_settings
from app.dashboard import dashboard_asgi
from app.deps import ReleasingRoute
from app.errors import install_error_handlers
from app.events import TaskEventHub
from app.metrics import install_metrics
from app.openapi import install_openapi
from app.polling import PollHints
from app.routes import (
    audio,
    docs,
    events,
    exports,
    health,
    history,
    lifecycle,
    openai_api,
    page,
    queue,
    tasks,
    telegram,
)
from app.upload_auth import UploadKeyMiddleware, UploadRoute
from app.uploads import UploadLimitMiddleware
from jobs.queues import connect_redis, connect_redis_async
from models import Scope as KeyScope
from storage import get_storage

API_PREFIX = "/api/v1"
# Every route that takes a multipart upload; the OpenAI-compatible ones answer with the
# transcript, so their key needs `read` too.
UPLOAD_ROUTES = {
    f"{API_PREFIX}/asr/submit": UploadRoute((KeyScope.SUBMIT,)),
    "/v1/audio/transcriptions": UploadRoute((KeyScope.SUBMIT, KeyScope.READ), openai=True),
    "/v1/audio/translations": UploadRoute((KeyScope.SUBMIT, KeyScope.READ), openai=True),
}
DESCRIPTION = """
Upload audio or video, get a task id at once, fetch the transcript when a worker has
produced it. Errors are JSON: `{"error": "...", "detail": "..."}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings, "api")
    hide_query_keys_in_access_log()  # the event stream and audio accept `?api_key=`
    app = FastAPI(
        title="Whisper batch transcription", version="0.1.0", description=DESCRIPTION,
        docs_url=None, redoc_url=None,  # app/routes/docs.py: the same, without a CDN
        lifespan=lifespan,
    )  # fmt: skip
    app.router.route_class = ReleasingRoute  # for routes added on the app itself (/metrics)
    app.state.settings = settings
    # Few retries: a request should fail fast with 503 rather than hang while Redis is down.
    app.state.redis = connect_redis(settings.REDIS_URL, retries=1, socket_timeout=5)
    app.state.storage = get_storage(settings)
    app.state.started = time.monotonic()
    app.state.task_events = TaskEventHub(settings, app.state.redis)
    app.state.poll_hints = PollHints()
    app.state.task_paths = {}  # app/views.task_url

    app.state.http_metrics = install_metrics(app, settings, app.state.redis)
    install_error_handlers(app)
    app.add_middleware(
        UploadLimitMiddleware, max_bytes=settings.max_upload_bytes, paths=tuple(UPLOAD_ROUTES)
    )
    if settings.AUTH_ENABLED:  # added after, so it runs first: no key, no 413 either
        app.add_middleware(UploadKeyMiddleware, settings=settings, routes=UPLOAD_ROUTES)
    app.add_middleware(AccessLog)
    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.CORS_ORIGINS, allow_methods=["*"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Range"],
        )  # fmt: skip

    for routes in (tasks, exports, lifecycle, history, audio, queue, events):
        app.include_router(routes.router, prefix=API_PREFIX)
    app.include_router(openai_api.router)  # /v1/audio/..., where OpenAI's SDKs look
    app.include_router(telegram.router)
    app.mount("/rq", dashboard_asgi(settings))
    app.include_router(page.router)  # the web page at /
    app.mount("/static", page.static_files())
    app.include_router(docs.router)  # /docs, /redoc
    app.mount(docs.ASSETS_URL, docs.static_files())
    app.include_router(health.router)
    app.include_router(health.router, prefix=API_PREFIX, include_in_schema=False)
    install_openapi(app)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The clients bound to the server's event loop: the async database pool and Redis client
    the polled routes use (app/async_db.py)."""
    settings: Settings = app.state.settings
    app.state.db = AsyncDatabase(settings.DATABASE_URL)
    app.state.redis_async = connect_redis_async(settings.REDIS_URL, socket_timeout=5)
    try:
        yield
    finally:
        await app.state.db.close()
        await app.state.redis_async.aclose()


class AccessLog:
    """One access-log line and the HTTP metrics per request. Plain ASGI rather than
    `@app.middleware("http")`, which costs a task and a queue per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            seconds = time.perf_counter() - started
            request = Request(scope)
            request.app.state.http_metrics.observe(request, status, seconds)
            client = request.client.host if request.client else "-"
            logger.bind(access=True).info(
                '{} "{} {}" {} {:.1f}ms', client, request.method, request.url.path, status,
                seconds * 1000,
            )  # fmt: skip
