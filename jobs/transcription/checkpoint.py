"""Between segments, silent windows (or batched steps) a running transcription checks its
time limit, the worker's shutdown grace, and whether its task was canceled, and stores
progress.

RQ's own timeout is a SIGALRM that fires only when control returns to Python, and RQ's
stop-job command does nothing for a SimpleWorker, so both are checked here. A task is
canceled (or deleted) by the API changing its row; the row is read at most every
CHECK_INTERVAL_SECONDS.
"""

import math
import time
import uuid

from loguru import logger
from sqlalchemy import update

from app.config import Settings
from jobs.transcription import shutdown
from jobs.transcription.retry import is_transient
from models import Task, TaskStatus
from models.db import session_scope

# The row is read (cancel check) and progress written at most this often.
CHECK_INTERVAL_SECONDS = 0.5


def progress_percent(fraction: float) -> float:
    """Tenths of a percent (a tenth of an hour's recording is 3.6 s of audio); 100 is kept
    for the stored result."""
    return min(99.9, math.floor(1000 * fraction) / 10)


class TranscriptionTimeout(Exception):
    """The job ran past JOB_TIMEOUT_SECONDS."""


class WorkerStopping(Exception):
    """The worker got SIGTERM and the grace period for finishing this task is over."""


class TaskCanceled(Exception):
    """The task was canceled or deleted while it was being transcribed."""

    def __init__(self, task_id: uuid.UUID, status: str | None) -> None:
        super().__init__(f"task {task_id}: {status or 'deleted'} while processing")
        self.deleted = status is None


def check_limits(settings: Settings, started: float) -> None:
    """Raise when the run is past JOB_TIMEOUT_SECONDS or the worker's shutdown grace."""
    limit = settings.JOB_TIMEOUT_SECONDS
    if time.monotonic() - started > limit:
        raise TranscriptionTimeout(f"timed out after {limit} s")
    if shutdown.overdue(settings.WORKER_SHUTDOWN_GRACE_SECONDS):
        raise WorkerStopping()


class Checkpoint:
    """Called after each segment, each window the speech gate skips and each piece (so also
    in long silence): enforces the time limit, notices cancellation, and stores progress.

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
        self.last_percent = 0.0

    def __call__(self, covered_seconds: float, total_seconds: float) -> None:
        check_limits(self.settings, self.started)
        now = time.monotonic()
        if now - self.last_check < CHECK_INTERVAL_SECONDS:
            return
        percent = progress_percent(covered_seconds / total_seconds) if total_seconds else 0.0
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


class BatchCheckpoint:
    """After each batched step (`covered`: the share of the batch's audio decoded so far):
    the time limit, the shutdown grace, and progress for every task in one statement. A
    task canceled or deleted meanwhile is not written at the end: its row is no longer
    `processing`."""

    def __init__(self, settings: Settings, task_ids: list[uuid.UUID], started: float) -> None:
        self.settings = settings
        self.task_ids = task_ids
        self.started = started
        self.last_check = started

    def __call__(self, covered: float) -> None:
        check_limits(self.settings, self.started)  # stops the whole batch
        now = time.monotonic()
        if now - self.last_check < CHECK_INTERVAL_SECONDS:
            return
        self.last_check = now
        percent = progress_percent(covered)
        try:
            with session_scope(self.settings.DATABASE_URL) as session:
                session.execute(
                    update(Task)
                    .where(Task.id.in_(self.task_ids), Task.status == TaskStatus.PROCESSING,
                           Task.progress < percent)
                    .values(progress=percent)
                )  # fmt: skip
        except Exception as exc:
            if not is_transient(exc):
                raise
            logger.warning("batch: progress not saved: {}", type(exc).__name__)
