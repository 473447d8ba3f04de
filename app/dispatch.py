"""Handing a task to the queue: commit the row first, then enqueue."""

from datetime import UTC, datetime

from loguru import logger
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ServiceUnavailable
from jobs.history import log_end
from jobs.queues import enqueue_transcription, model_queue
from models import Task, TaskStatus


def dispatch(
    session: Session, queue: Queue, task: Task, settings: Settings, replace: bool = False
) -> None:
    """Commit `task` as queued, then enqueue it (the worker must find the row when the job
    starts). If Redis refuses, the task ends `failed`, so that it never claims `queued`
    without a job, and the client gets a 503; the audio is kept for a retry.

    `replace` drops the RQ record of an earlier run first (a retry reuses the task id).
    """
    task.status = TaskStatus.QUEUED
    session.commit()
    try:
        own_queue = model_queue(queue.connection, settings, task.model)
        enqueue_transcription(own_queue, task.id, settings, replace=replace,
                              duration=task.duration_seconds or 0.0)  # fmt: skip
    except RedisError as exc:
        logger.error("task {}: could not enqueue: {}", task.id, exc)
        task.status = TaskStatus.FAILED
        task.error = f"could not be queued: Redis unavailable ({exc})"
        # Ended like any failed task: a history line, and its webhook or Telegram reply owed
        # on the row (ended, not delivered). Queuing that needs Redis too: the reconciler
        # queues what is owed once Redis is back.
        task.finished_at = datetime.now(UTC)
        session.commit()
        log_end(settings, task)
        raise ServiceUnavailable(
            "the task was stored but could not be queued because Redis is unavailable; "
            "retry it later",
            task_id=str(task.id),
        ) from None
