"""Readiness: Redis, Postgres and the storage answer and at least one worker is alive."""

import time
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.deps import RedisDep, ReleasingRoute, SettingsDep
from app.schemas import Health
from app.views import worker_public
from jobs.queues import WorkerInfo, live_workers
from models.db import session_scope
from storage import StorageUnavailable

router = APIRouter(tags=["health"], route_class=ReleasingRoute)


# A readiness probe, a load balancer and the web page may ask many times a second; the
# answer is worked out (Redis, Postgres, storage, the workers' heartbeats) at most this
# often per API process, and served from memory in between.
HEALTH_CACHE_SECONDS = 1.0


@dataclass
class _Answer:
    body: bytes = b""
    status_code: int = 0
    made_at: float = float("-inf")


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready; `reasons` says why."}},
)
async def read_health(request: Request, redis: RedisDep, settings: SettingsDep) -> Response:
    """200 when the service can take and finish work, else 503 with the reasons (worked out
    at most once a second)."""
    state = request.app.state
    if not hasattr(state, "health"):
        state.health = _Answer()
    if time.monotonic() - state.health.made_at >= HEALTH_CACHE_SECONDS:
        health = await run_in_threadpool(check_health, request, redis, settings)
        state.health = _Answer(health.model_dump_json().encode(),
                               503 if health.reasons else 200, time.monotonic())  # fmt: skip
    return Response(state.health.body, state.health.status_code, media_type="application/json")


def check_health(request: Request, redis: Redis, settings: Settings) -> Health:
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
    return health
