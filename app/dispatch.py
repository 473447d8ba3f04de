"""Handing a task to the queue: commit the row first, then enqueue."""

from loguru import logger
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ServiceUnavailable
from jobs.queues import enqueue_transcription, model_queue
from models import Task, TaskStatus


def dispatch(
    session: Session, queue: Queue, task: Task, settings: Settings, replace: bool = False
) -> None:
    """Commit `task` as queued, then enqueue it (the worker must find the row when the job
    starts). If Redis refuses, the row is marked failed, so that it never claims `queued`
    without a job, and the client gets a 503; the audio is kept for a retry.

    `replace` drops the RQ record of an earlier run first (a retry reuses the task id).
    """
    task.status = TaskStatus.QUEUED
    session.commit()
    try:
        own_queue = model_queue(queue.connection, settings, task.model)
        enqueue_transcription(own_queue, task.id, settings, replace=replace)
    except RedisError as exc:
        logger.error("task {}: could not enqueue: {}", task.id, exc)
        task.status = TaskStatus.FAILED
        task.error = f"could not be queued: Redis unavailable ({exc})"
        session.commit()
        raise ServiceUnavailable(
            "the task was stored but could not be queued because Redis is unavailable; "
            "retry it later",
            task_id=str(task.id),
        ) from None
