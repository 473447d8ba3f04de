"""The transcription job: claim the task, transcribe its audio, store the result.

Postgres owns the task's status. The job is safe to re-run: a task already in a final state
is left alone, so a re-delivered job never writes a second transcript or history line.
"""

import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import av
from loguru import logger
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from app.config import Settings, get_settings
from jobs import engine, shutdown
from jobs.outcome import finish_done, finish_failed, forget_job, put_back
from jobs.retry import is_transient, with_retries
from models import Task, TaskStatus
from models.db import session_scope
from storage import AudioNotFound, get_storage

# The row is read (cancel check) and progress written at most this often.
CHECK_INTERVAL_SECONDS = 0.5


class TranscriptionTimeout(Exception):
    """The job ran past JOB_TIMEOUT_SECONDS."""


class WorkerStopping(Exception):
    """The worker got SIGTERM and the grace period for finishing this task is over."""


class TaskCanceled(Exception):
    """The task was canceled or deleted while it was being transcribed."""

    def __init__(self, task_id: uuid.UUID, status: str | None) -> None:
        super().__init__(f"task {task_id}: {status or 'deleted'} while processing")
        self.deleted = status is None


@dataclass(frozen=True)
class ClaimedTask:
    task_id: uuid.UUID
    audio_key: str
    options: engine.TranscriptionOptions


def transcribe(task_id: str) -> None:
    """Transcribe one uploaded recording and store the transcript. Safe to re-run."""
    settings = get_settings()
    claimed = with_retries(claim_task, settings, uuid.UUID(task_id), current_worker_name())
    if claimed is None:
        return
    started = time.monotonic()
    try:
        model = engine.get_model(settings)
        checkpoint = Checkpoint(settings, claimed.task_id, started)
        with get_storage(settings).open(claimed.audio_key) as audio:
            transcript = engine.transcribe(
                model, audio, claimed.options, checkpoint, settings.AUDIO_PIECE_SECONDS,
                settings.WHISPER_BATCH_SIZE,
            )  # fmt: skip
        with_retries(finish_done, settings, claimed.task_id, transcript,
                     time.monotonic() - started, model.name)  # fmt: skip
    except TaskCanceled as exc:
        logger.info("{}: stopped after {:.1f} s", exc, time.monotonic() - started)
        if exc.deleted:
            forget_job()
        return  # not an error: RQ files the job as finished and the worker moves on
    except (WorkerStopping, KeyboardInterrupt, SystemExit) as exc:
        # Asked to stop (grace period over, or a second SIGTERM): not the task's fault.
        with_retries(put_back, settings, claimed.task_id)
        logger.warning("task {}: put back in the queue, the worker is stopping", task_id)
        if isinstance(exc, WorkerStopping):
            return
        raise
    except BaseException as exc:  # never leave the task `processing`
        reason = failure_reason(exc, settings)
        try:
            with_retries(finish_failed, settings, claimed.task_id, reason,
                         time.monotonic() - started)  # fmt: skip
        except Exception as record_error:  # RQ's on_job_failure tries again
            logger.opt(exception=record_error).error("task {}: could not record failure", task_id)
        raise  # RQ files the job as failed


def current_worker_name() -> str:
    job = get_current_job()
    return (job.worker_name if job else None) or f"{socket.gethostname()}.{id(job)}"


def claim_task(settings: Settings, task_id: uuid.UUID, worker_name: str) -> ClaimedTask | None:
    """Mark the task `processing`; None when there is nothing (left) to do."""
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, task_id, with_for_update=True)
        if task is None:
            logger.warning("task {}: no such row, job dropped", task_id)
            forget_job()
            return None
        if task.status != TaskStatus.QUEUED:
            # A lost run is put back to `queued` by the reconciler before it is re-enqueued,
            # so any other state means someone else owns the task (or it has ended).
            logger.info("task {}: already {}, nothing to do", task_id, task.status)
            return None
        if task.audio_key is None:
            task.status, task.error = TaskStatus.FAILED, "audio file is no longer stored"
            task.finished_at = datetime.now(UTC)
            return None
        task.status = TaskStatus.PROCESSING
        task.started_at = datetime.now(UTC)
        task.attempts += 1
        task.progress = 0
        task.error = None
        task.worker_name = worker_name
        logger.info(
            "task {}: processing {} (attempt {}, pid {})",
            task_id, task.filename, task.attempts, os.getpid(),
        )  # fmt: skip
        return ClaimedTask(
            task_id=task.id,
            audio_key=task.audio_key,
            options=engine.TranscriptionOptions(**task.options()),
        )


class Checkpoint:
    """Called after each segment: enforces the time limit, notices cancellation, and stores
    progress.

    RQ's own timeout is a SIGALRM that fires only when control returns to Python, and RQ's
    stop-job command does nothing for a SimpleWorker, so both are checked here. A task is
    canceled (or deleted) by the API changing its row; the row is read at most every
    CHECK_INTERVAL_SECONDS.
    """

    def __init__(self, settings: Settings, task_id: uuid.UUID, started: float) -> None:
        self.settings = settings
        self.task_id = task_id
        self.started = started
        self.last_check = started
        self.last_percent = 0

    def __call__(self, covered_seconds: float, total_seconds: float) -> None:
        now = time.monotonic()
        limit = self.settings.JOB_TIMEOUT_SECONDS
        if now - self.started > limit:
            raise TranscriptionTimeout(f"timed out after {limit} s")
        if shutdown.overdue(self.settings.WORKER_SHUTDOWN_GRACE_SECONDS):
            raise WorkerStopping()
        if now - self.last_check < CHECK_INTERVAL_SECONDS:
            return
        percent = min(99, int(100 * covered_seconds / total_seconds)) if total_seconds else 0
        try:
            with session_scope(self.settings.DATABASE_URL) as session:
                task = session.get(Task, self.task_id)
                if task is None or task.status != TaskStatus.PROCESSING:
                    raise TaskCanceled(self.task_id, task.status if task else None)
                if percent > self.last_percent:
                    task.progress = self.last_percent = percent
        except Exception as exc:
            if not is_transient(exc):
                raise
            # The database is away: keep transcribing; the result is saved with retries.
            logger.warning("task {}: progress not saved: {}", self.task_id, type(exc).__name__)
        self.last_check = now


def failure_reason(exc: BaseException, settings: Settings) -> str:
    """A sentence a client can act on, not a stack trace."""
    if isinstance(exc, TranscriptionTimeout):
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
