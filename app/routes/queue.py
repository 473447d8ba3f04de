"""Operator views: the queue now, and totals since the start."""

import time

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from app.auth import AdminCaller
from app.deps import QueueDep, RedisDep, ReleasingRoute, SessionDep, SettingsDep
from app.errors import VALIDATION_RESPONSES
from app.estimates import estimated_wait
from app.schemas import QueueStatus, RtfStats, Stats
from app.views import worker_public
from jobs.queues import live_workers, model_queues, queue_counts
from models import Task, TaskStatus

router = APIRouter(tags=["operations"], responses=VALIDATION_RESPONSES, route_class=ReleasingRoute)


@router.get("/asr/queue/status")
def read_queue_status(
    session: SessionDep, queue: QueueDep, redis: RedisDep, settings: SettingsDep,
    caller: AdminCaller,
) -> QueueStatus:  # fmt: skip
    """Jobs waiting, running and failed, and the workers serving them."""
    counts = [queue_counts(q) for q in model_queues(queue.connection, settings)]
    names = {q.name for q in model_queues(queue.connection, settings)}
    # Live heartbeats, not RQ's worker registry: a killed worker stays listed there for
    # minutes (RQ refreshes its key only between jobs).
    workers = [w for w in live_workers(redis) if names & set(w.queues)]
    return QueueStatus(
        queued=sum(c.queued for c in counts),
        processing=sum(c.processing for c in counts),
        failed=sum(c.failed for c in counts),
        workers=len(workers),
        workers_busy=sum(w.state == "busy" for w in workers),
        estimated_wait=estimated_wait(session, len(workers)),
    )


@router.get("/stats")
def read_stats(
    request: Request, session: SessionDep, redis: RedisDep, caller: AdminCaller
) -> Stats:
    """Totals by status, audio transcribed, speed and wait, and each worker's state."""
    by_status = dict(session.execute(select(Task.status, func.count()).group_by(Task.status)).all())
    tasks = {status.value: by_status.get(status.value, 0) for status in TaskStatus}
    tasks["total"] = sum(by_status.values())
    done = Task.status == TaskStatus.DONE
    audio_seconds, mean_rtf, median_rtf = session.execute(
        select(
            func.coalesce(func.sum(Task.duration_seconds), 0.0),
            func.avg(Task.rtf),
            func.percentile_cont(0.5).within_group(Task.rtf),
        ).where(done)
    ).one()
    mean_wait = session.scalar(
        select(func.avg(func.extract("epoch", Task.started_at - Task.created_at))).where(
            Task.started_at.is_not(None)
        )
    )
    return Stats(
        tasks=tasks,
        audio_hours_transcribed=round(float(audio_seconds) / 3600, 4),
        rtf=RtfStats(mean=_rounded(mean_rtf), median=_rounded(median_rtf)),
        mean_queue_wait_seconds=_rounded(mean_wait, 3),
        uptime=round(time.monotonic() - request.app.state.started, 1),
        workers=[worker_public(w) for w in live_workers(redis)],
    )


def _rounded(value: object, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)  # type: ignore[arg-type]
