"""Submitting recordings and reading results."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from loguru import logger
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deps import QueueDep, RedisDep, SessionDep, SettingsDep, StorageDep
from app.errors import (
    AudioGone,
    BadRequest,
    Conflict,
    PayloadTooLarge,
    ServiceUnavailable,
    TaskNotFound,
    UnsupportedMedia,
    responses,
)
from app.estimates import estimated_wait
from app.schemas import (
    TaskOptions,
    TaskPublic,
    TaskQueued,
    TaskTimings,
    TranscriptSegment,
    task_options_form,
)
from app.uploads import store_upload
from jobs.queues import enqueue_transcription, live_workers, queue_position
from models import Task, TaskStatus
from models.task import RECORDING_SEQ

router = APIRouter(prefix="/asr", tags=["tasks"])


@router.post(
    "/submit",
    status_code=202,
    responses=responses(BadRequest, PayloadTooLarge, UnsupportedMedia, ServiceUnavailable),
)
def submit_task(
    request: Request,
    audio: Annotated[UploadFile, File(description="The recording: audio or video file.")],
    options: Annotated[TaskOptions, Depends(task_options_form)],
    session: SessionDep,
    queue: QueueDep,
    redis: RedisDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> TaskQueued:
    """Upload a recording; answers at once with a task id while a worker transcribes it."""
    task_id = uuid.uuid4()
    seq = session.scalar(RECORDING_SEQ.next_value().select())
    assert seq is not None
    stored = store_upload(audio, storage, task_id, seq, settings.max_upload_bytes)
    task = Task(
        id=task_id,
        seq=seq,
        status=TaskStatus.QUEUED,
        filename=stored.filename,
        audio_key=stored.key,
        content_type=stored.media.content_type,
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
        duration_seconds=stored.media.duration_seconds,
        model=settings.WHISPER_MODEL,
        **options.model_dump(exclude={"beam_size"}),
        beam_size=options.beam_size or settings.WHISPER_DEFAULT_BEAM_SIZE,
    )
    session.add(task)
    try:
        session.commit()
    except BaseException:
        storage.delete(stored.key)
        raise
    # Enqueue only after the commit: the worker must find the row when the job starts.
    try:
        enqueue_transcription(queue, task_id, settings)
    except RedisError as exc:
        _fail_unqueued(session, task, exc)
        raise ServiceUnavailable(
            "the task was stored but could not be queued because Redis is unavailable; "
            "retry the task later",
            task_id=str(task_id),
        ) from None
    logger.info(
        "task {}: queued {} ({}, {} bytes, {} s)",
        task_id, stored.filename, stored.media.container, stored.size_bytes,
        stored.media.duration_seconds,
    )  # fmt: skip
    return _queued(request, session, queue, redis, task)


def _queued(
    request: Request, session: Session, queue: Queue, redis: Redis, task: Task
) -> TaskQueued:
    return TaskQueued(
        task_id=task.id,
        position=queue_position(queue, task.id),
        estimated_wait=estimated_wait(session, task, len(live_workers(redis))),
        result_url=str(request.url_for("read_result", task_id=task.id)),
    )


def _fail_unqueued(session: Session, task: Task, exc: Exception) -> None:
    """A committed row must not claim `queued` while no job exists for it."""
    logger.error("task {}: could not enqueue: {}", task.id, exc)
    task.status = TaskStatus.FAILED
    task.error = f"could not be queued: Redis unavailable ({exc})"
    session.commit()


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
    force: Annotated[bool, Query(description="Also re-run a task that is done.")] = False,
) -> TaskQueued:
    """Queue a failed or canceled task again with its stored audio and options."""
    task = get_task_or_404(session, task_id, for_update=True)
    if task.status in (TaskStatus.QUEUED, TaskStatus.PROCESSING):
        raise Conflict(f"the task is {task.status}; it can be retried once it has ended")
    if task.status == TaskStatus.DONE and not force:
        raise Conflict("the task is done; pass force=true to transcribe it again")
    if task.audio_key is None or not storage.exists(task.audio_key):
        raise AudioGone("the recording was removed by retention; upload it again")
    task.status = TaskStatus.QUEUED
    task.error = None
    task.progress = 0
    task.started_at = task.finished_at = None
    session.commit()
    try:
        enqueue_transcription(queue, task.id, settings, replace=True)
    except RedisError as exc:
        _fail_unqueued(session, task, exc)
        raise ServiceUnavailable(
            "Redis is unavailable; retry later", task_id=str(task_id)
        ) from None
    logger.info("task {}: queued again (attempts so far: {})", task_id, task.attempts)
    return _queued(request, session, queue, redis, task)


@router.get("/result/{task_id}", responses=responses(TaskNotFound))
def read_result(
    task_id: uuid.UUID, request: Request, session: SessionDep, queue: QueueDep
) -> TaskPublic:
    """Status of a task and, once done, its transcript."""
    task = get_task_or_404(session, task_id)
    public = task_public(task, request)
    if task.status == TaskStatus.QUEUED:
        public.position = queue_position(queue, task.id)
    return public


def get_task_or_404(session: Session, task_id: uuid.UUID, for_update: bool = False) -> Task:
    query = select(Task).where(Task.id == task_id)
    task = session.scalar(query.with_for_update() if for_update else query)
    if task is None:
        raise TaskNotFound(f"no task with id {task_id}")
    return task


def task_public(task: Task, request: Request) -> TaskPublic:
    status = TaskStatus(task.status)
    public = TaskPublic(
        task_id=task.id,
        status=status.value,
        filename=task.filename,
        model=task.model,
        options=TaskOptions(
            language=task.language,
            task=task.task,  # type: ignore[arg-type]
            word_timestamps=task.word_timestamps,
            hotwords=task.hotwords,
            initial_prompt=task.initial_prompt,
            vad_filter=task.vad_filter,
            beam_size=task.beam_size,
        ),
        attempts=task.attempts,
        duration=task.duration_seconds,
        timings=_timings(task),
    )
    if status == TaskStatus.PROCESSING:
        public.progress = task.progress
    elif status == TaskStatus.DONE:
        public.text = task.text
        public.language = task.detected_language
        public.language_probability = task.language_probability
        public.segments = [TranscriptSegment.model_validate(s) for s in task.segments or []]
        public.audio_url = str(request.url_for("download_audio", task_id=task.id))
    elif status == TaskStatus.FAILED:
        public.error = task.error
        public.retry_url = str(request.url_for("retry_task", task_id=task.id))
    return public


def _timings(task: Task) -> TaskTimings:
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
