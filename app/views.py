"""Finding tasks and turning rows into response bodies, shared by the task routes."""

import uuid

from fastapi import Request, Response
from loguru import logger
from pydantic import BaseModel
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.async_db import AsyncDatabase
from app.auth import Caller
from app.errors import TaskNotFound
from app.estimates import estimated_wait
from app.schemas import (
    HistoryRecord,
    TaskExisting,
    TaskOptions,
    TaskPublic,
    TaskQueued,
    TaskTimings,
    TranscriptSegment,
    WebhookState,
    WorkerPublic,
)
from jobs.queues import WorkerInfo, live_workers, model_queue, queue_position
from models import Task, TaskStatus
from models.task import task_snapshot

TEXT_PREVIEW_CHARS = 200
NO_WORKER_WARNING = "no worker is running; the task waits until one starts"


def get_task_or_404(
    session: Session, task_id: uuid.UUID, caller: Caller, for_update: bool = False
) -> Task:
    """The task, if it exists and the caller may see it. Another key's task is a 404 too:
    whether an id exists must not leak."""
    query = select(Task).where(Task.id == task_id)
    task = session.scalar(query.with_for_update() if for_update else query)
    if task is None or not caller.owns(task):
        raise TaskNotFound(f"no task with id {task_id}")
    return task


TASK_BY_ID = select(Task).where(Task.id == bindparam("task_id"))


async def find_task_or_404(db: AsyncDatabase, task_id: uuid.UUID, caller: Caller) -> Task:
    """`get_task_or_404` on the event loop, for the routes clients poll: a read-only Task."""
    row = await db.fetch_one(TASK_BY_ID, task_id=task_id)
    task = None if row is None else task_snapshot(row)
    if task is None or not caller.owns(task):
        raise TaskNotFound(f"no task with id {task_id}")
    return task


def queued_response(
    request: Request, session: Session, queue: Queue, redis: Redis, task: Task
) -> TaskQueued:
    """The answer to a submit or retry. The task is already queued: a Redis blip now costs
    the position and estimate (null), never the answer."""
    position, workers, rtf = None, None, None
    try:
        settings = request.app.state.settings
        position = queue_position(model_queue(redis, settings, task.model), task.id)
        workers = len(live_workers(redis))
        rtf = request.app.state.poll_hints.recent_rtf(settings.DATABASE_URL, redis)
    except RedisError as exc:
        logger.warning("task {}: queued, but no position: {}", task.id, exc)
    return TaskQueued(
        task_id=task.id,
        position=position,
        estimated_wait=estimated_wait(session, workers, before_seq=task.seq, rtf=rtf)
        if workers
        else None,
        result_url=task_url(request, "read_result", task.id),
        warning=NO_WORKER_WARNING if workers == 0 else None,
    )


def json_response(model: BaseModel) -> Response:
    """`model` as the JSON FastAPI would send for it (the route's `response_model` still
    documents it), without FastAPI validating it once more in a thread-pool hop: for the
    routes clients poll (docs/performance-notes.md, "API profile")."""
    return Response(model.model_dump_json(by_alias=True), media_type="application/json")


def task_public(task: Task, request: Request) -> TaskPublic:
    status = TaskStatus(task.status)
    public = TaskPublic(
        task_id=task.id,
        status=status.value,
        filename=task.filename,
        model=task.model,
        options=TaskOptions(**task.options()),
        attempts=task.attempts,
        duration=task.duration_seconds,
        timings=task_timings(task),
        audio_url=audio_url(task, request),
        metadata=task.client_metadata,
        webhook=webhook_state(task),
    )
    if status == TaskStatus.PROCESSING:
        public.progress = task.progress
    elif status == TaskStatus.DONE:
        public.text = task.text
        public.language = task.detected_language
        public.language_probability = task.language_probability
        public.segments = [TranscriptSegment.model_validate(s) for s in task.segments or []]
    elif status == TaskStatus.FAILED:
        public.error = task.error
    if status in (TaskStatus.FAILED, TaskStatus.CANCELED):
        public.retry_url = task_url(request, "retry_task", task.id)
    return public


def existing_response(
    request: Request, response: Response, task: Task, header: str
) -> TaskExisting:
    """The answer to a submit that matched `task`: 200, and `header` says why."""
    response.status_code = 200
    response.headers[header] = "true"
    return TaskExisting(
        **task_public(task, request).model_dump(),
        result_url=task_url(request, "read_result", task.id),
    )


def history_record(task: Task, request: Request) -> HistoryRecord:
    text = task.text or ""
    preview = text if len(text) <= TEXT_PREVIEW_CHARS else text[:TEXT_PREVIEW_CHARS] + "…"
    return HistoryRecord(
        task_id=task.id,
        filename=task.filename,
        status=task.status,  # type: ignore[arg-type]
        text_preview=preview or None,
        created_at=task.created_at,
        duration=task.duration_seconds,
        audio_url=audio_url(task, request),
    )


def audio_url(task: Task, request: Request) -> str | None:
    """Null once retention removed the recording."""
    if task.audio_key is None:
        return None
    return task_url(request, "download_audio", task.id)


# Stands for the task id in the cached paths below.
_ANY_TASK_ID = "00000000-0000-0000-0000-000000000000"


def task_url(request: Request, route_name: str, task_id: uuid.UUID) -> str:
    """`request.url_for(route_name, task_id=task_id)`, without searching the app's routes
    for the name each time (every result has one or two of these URLs; the search tries
    each route in turn, and there are dozens)."""
    paths: dict[str, str] = request.app.state.task_paths
    path = paths.get(route_name)
    if path is None:
        path = paths[route_name] = request.app.url_path_for(route_name, task_id=_ANY_TASK_ID)
    # As URLPath.make_absolute_url: the request's scheme, host and root path, then the path.
    return str(request.base_url).rstrip("/") + path.replace(_ANY_TASK_ID, str(task_id))


def webhook_state(task: Task) -> WebhookState | None:
    if task.callback_url is None:
        return None
    return WebhookState(
        attempts=task.webhook_attempts or 0,
        last_status=task.webhook_last_status,
        delivered_at=task.webhook_delivered_at,
    )


def task_timings(task: Task) -> TaskTimings:
    queue_seconds = None
    if task.started_at is not None:
        queue_seconds = round((task.started_at - task.created_at).total_seconds(), 3)
    return TaskTimings(
        created_at=task.created_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
        queue_seconds=queue_seconds,
        processing_seconds=task.processing_seconds,
        rtf=task.rtf,
    )


def worker_public(worker: WorkerInfo) -> WorkerPublic:
    return WorkerPublic.model_validate(worker, from_attributes=True)
