"""The FastAPI application. Run with `uvicorn --factory app.main:create_app`."""

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from loguru import logger

from app.config import Settings, configure_logging, get_settings
from app.dashboard import dashboard_asgi
from app.errors import install_error_handlers
from app.metrics import install_metrics
from app.routes import audio, health, history, lifecycle, queue, tasks
from app.uploads import UploadLimitMiddleware
from jobs.queues import connect_redis
from storage import get_storage

API_PREFIX = "/api/v1"
DESCRIPTION = """
Upload audio or video, get a task id at once, fetch the transcript when a worker has
produced it. Errors are JSON: `{"error": "...", "detail": "..."}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings, "api")
    app = FastAPI(title="Whisper batch transcription", version="0.1.0", description=DESCRIPTION)
    app.state.settings = settings
    # Few retries: a request should fail fast with 503 rather than hang while Redis is down.
    app.state.redis = connect_redis(settings.REDIS_URL, retries=1, socket_timeout=5)
    app.state.storage = get_storage(settings)
    app.state.started = time.monotonic()

    app.state.http_metrics = install_metrics(app, settings, app.state.redis)
    install_error_handlers(app)
    app.add_middleware(
        UploadLimitMiddleware,
        max_bytes=settings.max_upload_bytes,
        paths=(f"{API_PREFIX}/asr/submit",),
    )
    app.middleware("http")(log_access)
    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.CORS_ORIGINS, allow_methods=["*"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Range"],
        )  # fmt: skip

    for routes in (tasks, lifecycle, history, audio, queue):
        app.include_router(routes.router, prefix=API_PREFIX)
    app.mount("/rq", dashboard_asgi(settings))
    app.include_router(health.router)
    app.include_router(health.router, prefix=API_PREFIX, include_in_schema=False)
    return app


async def log_access(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    seconds = time.perf_counter() - started
    request.app.state.http_metrics.observe(request, response.status_code, seconds)
    client = request.client.host if request.client else "-"
    logger.bind(access=True).info(
        '{} "{} {}" {} {:.1f}ms',
        client, request.method, request.url.path, response.status_code,
        seconds * 1000,
    )  # fmt: skip
    return response
