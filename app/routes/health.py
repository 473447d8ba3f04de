"""Readiness: Redis, Postgres and the storage answer and at least one worker is alive."""

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.deps import RedisDep, ReleasingRoute, SettingsDep
from app.schemas import Health
from app.views import worker_public
from jobs.queues import WorkerInfo, live_workers
from models.db import session_scope
from storage import StorageUnavailable

router = APIRouter(tags=["health"], route_class=ReleasingRoute)


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready; `reasons` says why."}},
)
def read_health(request: Request, redis: RedisDep, settings: SettingsDep) -> JSONResponse:
    """200 when the service can take and finish work, else 503 with the reasons."""
    reasons = []
    workers: list[WorkerInfo] = []
    try:
        redis.ping()
        workers = live_workers(redis)
        redis_state = "ok"
    except RedisError as exc:
        redis_state = f"unavailable: {exc}"
        reasons.append(f"redis {redis_state}")
    try:
        with session_scope(settings.DATABASE_URL) as session:
            session.execute(text("SELECT 1"))
        database_state = "ok"
    except SQLAlchemyError as exc:
        database_state = f"unavailable: {type(exc).__name__}"
        reasons.append(f"database {database_state}")
    try:
        request.app.state.storage.check()
        storage_state = f"{settings.STORAGE_BACKEND} ok"
    except StorageUnavailable as exc:
        storage_state = f"{settings.STORAGE_BACKEND} unavailable: {exc}"
        reasons.append(f"storage {storage_state}")
    if redis_state == "ok" and not workers:
        reasons.append("no worker alive: start one with `python -m jobs.worker`")
    health = Health(
        status="unavailable" if reasons else "ready",
        model=settings.WHISPER_MODEL,
        redis=redis_state,
        database=database_state,
        storage=storage_state,
        workers_active=len(workers),
        workers=[worker_public(w) for w in workers],
        uptime=round(time.monotonic() - request.app.state.started, 1),
        reasons=reasons,
    )  # fmt: skip
    return JSONResponse(health.model_dump(mode="json"), status_code=503 if reasons else 200)
