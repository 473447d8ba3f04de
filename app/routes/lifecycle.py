"""What a client can do to a task after submitting it: retry, cancel, delete."""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from loguru import logger
from redis.exceptions import RedisError
from rq import Queue

from app.auth import SubmitCaller
from app.deps import QueueDep, RedisDep, ReleasingRoute, SessionDep, SettingsDep, StorageDep
from app.dispatch import dispatch
from app.errors import (
    VALIDATION_RESPONSES,
    AudioGone,
    Conflict,
    ServiceUnavailable,
    TaskNotFound,
    responses,
)
from app.schemas import TaskPublic, TaskQueued
from app.views import get_task_or_404, queued_response, task_public
from jobs.delivery.announce import announce_end
from jobs.queues import live_workers, model_queue, previous_run_active, remove_job
from models import Task, TaskStatus
from storage import StorageUnavailable

router = APIRouter(
    prefix="/asr", tags=["tasks"], responses=VALIDATION_RESPONSES, route_class=ReleasingRoute
)

ACTIVE = (TaskStatus.QUEUED, TaskStatus.PROCESSING)


@router.post(
    "/retry/{task_id}",
    status_code=202,
    responses=responses(TaskNotFound, Conflict, AudioGone, ServiceUnavailable),
)
def retry_task(
    task_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    queue: QueueDep,
    redis: RedisDep,
    storage: StorageDep,
    settings: SettingsDep,
    caller: SubmitCaller,
    force: Annotated[bool, Query(description="Also re-run a task that is done.")] = False,
) -> TaskQueued:
    """Queue a failed or canceled task again with its stored audio and options."""
    task = get_task_or_404(session, task_id, caller, for_update=True)
    if task.status in ACTIVE:
        raise Conflict(f"the task is {task.status}; it can be retried once it has ended")
    if task.status == TaskStatus.DONE and not force:
        raise Conflict("the task is done; pass force=true to transcribe it again")
    if task.audio_key is None or not storage.exists(task.audio_key):
        raise AudioGone("the recording was removed by retention; upload it again")
    if previous_run_active(model_queue(redis, settings, task.model), task.id):
        raise Conflict("the worker is still finishing the previous run; retry in a moment")
    task.error = None
    task.progress = 0
    task.started_at = task.finished_at = None
    # The new run ends anew: its webhook and its Telegram reply are new deliveries with
    # attempts of their own.
    task.webhook_attempts, task.webhook_last_status, task.webhook_delivered_at = 0, None, None
    task.telegram_reply_attempts, task.telegram_reply_sent = 0, 0
    task.telegram_reply_ended_at = None
    dispatch(session, queue, task, settings, replace=True)
    logger.info("task {}: queued again after {} attempt(s)", task_id, task.attempts)
    return queued_response(request, session, queue, redis, task)


@router.post("/cancel/{task_id}", responses=responses(TaskNotFound, Conflict))
def cancel_task(
    task_id: uuid.UUID, request: Request, session: SessionDep, queue: QueueDep,
    caller: SubmitCaller,
) -> TaskPublic:  # fmt: skip
    """Stop a task: a queued one leaves the queue, a processing one stops within seconds."""
    task = get_task_or_404(session, task_id, caller, for_update=True)
    if task.status in (TaskStatus.DONE, TaskStatus.FAILED):
        raise Conflict(f"the task has already ended ({task.status}); nothing to cancel")
    if task.status in ACTIVE:
        stop(task)
        session.commit()
        own_queue = model_queue(queue.connection, request.app.state.settings, task.model)
        if not remove_job(own_queue, task.id, only_if_waiting=True):
            logger.info("task {}: canceled while processing; the worker stops at its next "
                        "segment", task_id)  # fmt: skip
        announce_end(queue.connection, task)
    return task_public(task, request)


@router.delete("/task/{task_id}", status_code=204, responses=responses(TaskNotFound))
def delete_task(
    task_id: uuid.UUID, session: SessionDep, redis: RedisDep, storage: StorageDep,
    settings: SettingsDep, caller: SubmitCaller,
) -> Response:  # fmt: skip
    """Delete a task with its transcript, its recording and its queue entry (cancels first)."""
    task = get_task_or_404(session, task_id, caller, for_update=True)
    audio_key, own_queue = task.audio_key, model_queue(redis, settings, task.model)
    session.delete(task)
    session.commit()
    try:
        drop_job(own_queue, task_id)
    except RedisError as exc:
        # The task is gone already (Postgres is the record): finish the delete. A job left
        # in Redis finds no row when a worker takes it and ends there.
        logger.warning("task {}: job left in Redis, unavailable: {}", task_id, exc)
    if audio_key is not None:
        try:
            storage.delete(audio_key)
        except StorageUnavailable as exc:
            # The task is gone already; its recording, now referenced by nothing, goes with
            # the sweeper's next orphan pass.
            logger.warning("task {}: recording {} left to the sweeper: {}", task_id, audio_key, exc)
    logger.info("task {}: deleted", task_id)
    return Response(status_code=204)


def drop_job(own_queue: Queue, task_id: uuid.UUID) -> None:
    """Remove the task's job record, unless a worker is running it: that worker sees the row
    vanish at its next segment, stops, and has RQ drop the record itself."""
    if not any(w.current_task == str(task_id) for w in live_workers(own_queue.connection)):
        remove_job(own_queue, task_id)


def stop(task: Task) -> None:
    task.status = TaskStatus.CANCELED
    task.finished_at = datetime.now(UTC)
