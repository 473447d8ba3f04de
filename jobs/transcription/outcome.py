"""Writing a run's outcome to the task row (and the history log).

Kept free of faster-whisper: RQ may call `on_job_failure` from any process that cleans up
after a dead worker.
"""

import uuid
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import av
from loguru import logger
from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from jobs.delivery.announce import announce_end_from
from jobs.history import log_end
from jobs.metrics import record_transcription
from jobs.queues import connect_redis
from jobs.transcription.audio_stream import RecordingTooLong
from jobs.transcription.checkpoint import TranscriptionTimeout
from models import Task, TaskStatus
from models.db import session_scope
from storage import AudioNotFound

if TYPE_CHECKING:
    from jobs.transcription.engine import Transcript


def forget_job(task_id: uuid.UUID) -> None:
    """The task was deleted while this job ran: have RQ delete the job record when the job
    returns, so nothing of the task remains. (The API cannot delete a running job: RQ fails
    when the record of the job it is finishing has gone.) A batch's other tasks have no job
    record left to forget."""
    job = get_current_job()
    if job is not None and job.id == str(task_id):
        job.result_ttl = 0


def lock_if_processing(session: Session, task_id: uuid.UUID) -> Task | None:
    """The row, locked, if this run still owns it. A client may have canceled the task
    (that state wins) or deleted it (then the job record goes too)."""
    task = session.get(Task, task_id, with_for_update=True)
    if task is None:
        forget_job(task_id)
        return None
    return task if task.status == TaskStatus.PROCESSING else None


def finish_done(
    settings: Settings, task_id: uuid.UUID, transcript: "Transcript", elapsed: float, model: str
) -> None:
    with session_scope(settings.DATABASE_URL) as session:
        task = lock_if_processing(session, task_id)
        if task is None:
            return
        task.status = TaskStatus.DONE
        task.model = model
        task.text = transcript.text
        task.segments = transcript.segments
        task.detected_language = transcript.language
        task.language_probability = transcript.language_probability
        task.duration_seconds = transcript.duration
        task.progress = 100
        task.finished_at = datetime.now(UTC)
        task.processing_seconds = round(elapsed, 3)
        task.rtf = round(elapsed / transcript.duration, 4) if transcript.duration else None
    # After the commit: the history line never describes a state Postgres does not hold.
    log_end(settings, task)
    announce_end_from(settings, task)
    count_transcription(settings, transcript.duration, elapsed)
    logger.info(
        "task {}: done, {} segments, {:.1f} s of audio, rtf {}",
        task_id, len(transcript.segments), transcript.duration, task.rtf,
    )  # fmt: skip


def count_transcription(settings: Settings, audio_seconds: float, wall_seconds: float) -> None:
    """Best effort: metrics must never fail a transcription that is already stored."""
    job = get_current_job()
    redis = job.connection if job is not None else connect_redis(settings.REDIS_URL)
    try:
        record_transcription(redis, audio_seconds, wall_seconds)
    except RedisError as exc:
        logger.warning("metrics: transcription not counted: {}", exc)


def finish_failed(
    settings: Settings, task_id: uuid.UUID, reason: str, elapsed: float | None = None
) -> None:
    """Mark a task that is `processing` as failed; any other state is left alone."""
    with session_scope(settings.DATABASE_URL) as session:
        task = lock_if_processing(session, task_id)
        if task is None:
            return
        task.status = TaskStatus.FAILED
        task.error = reason
        task.finished_at = datetime.now(UTC)
        if elapsed is not None:
            task.processing_seconds = round(elapsed, 3)
    log_end(settings, task)
    announce_end_from(settings, task)
    logger.error("task {}: failed: {}", task_id, reason)


def put_back(settings: Settings, task_id: uuid.UUID) -> None:
    """Return an interrupted task to `queued` (the run does not count as an attempt); the
    reconciler enqueues it again at the next worker start or scheduled pass."""
    with session_scope(settings.DATABASE_URL) as session:
        task = lock_if_processing(session, task_id)
        if task is not None:
            task.status = TaskStatus.QUEUED
            task.progress = 0
            task.attempts = max(0, task.attempts - 1)


def on_job_failure(
    job: Job,
    connection: Redis,
    exc_type: type[BaseException],
    exc: BaseException,
    traceback: TracebackType | None,
    *args: Any,
) -> None:
    """RQ's failure callback. The job marks its own failures; this catches the rest: RQ
    found the job abandoned by a worker that died (usually the reconciler was first), or the
    job could not record its outcome."""
    settings = get_settings()
    if exc_type.__name__ == "AbandonedJobError":
        # Only the row: RQ is still filing this job, so the reconciler enqueues it later.
        from jobs.upkeep.reconciler import release_lost_run

        release_lost_run(settings, uuid.UUID(job.id))
        return
    finish_failed(settings, uuid.UUID(job.id), f"transcription failed: {exc_type.__name__}: {exc}")


def failure_reason(exc: BaseException, settings: Settings) -> str:
    """A sentence a client can act on, not a stack trace."""
    if isinstance(exc, TranscriptionTimeout | RecordingTooLong):
        return str(exc)
    if isinstance(exc, JobTimeoutException):
        return f"timed out after {settings.JOB_TIMEOUT_SECONDS} s"
    if isinstance(exc, av.error.FFmpegError):
        return f"could not decode audio: {exc}"
    if isinstance(exc, AudioNotFound):
        return "audio file is missing from storage"
    if not isinstance(exc, Exception):
        return f"worker stopped while processing ({type(exc).__name__})"
    return f"transcription failed: {type(exc).__name__}: {exc}"
