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

from loguru import logger
from rq import get_current_job
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from jobs.delivery.announce import announce_end_from
from jobs.history import log_end
from jobs.transcription import batch_job, engine, inflight, seeding
from jobs.transcription.checkpoint import Checkpoint, TaskCanceled, WorkerStopping
from jobs.transcription.outcome import (
    failure_reason,
    finish_done,
    finish_failed,
    forget_job,
    put_back,
)
from jobs.transcription.retry import with_retries
from models import Task, TaskStatus
from models.db import session_scope
from storage import StorageUnavailable, get_storage


@dataclass(frozen=True)
class ClaimedTask:
    task_id: uuid.UUID
    audio_key: str
    options: engine.TranscriptionOptions
    duration_seconds: float | None  # as probed at upload


def transcribe(task_id: str) -> None:
    """Transcribe one uploaded recording and store the transcript. Safe to re-run."""
    settings = get_settings()
    worker_name = current_worker_name()
    claimed = with_retries(claim_task, settings, uuid.UUID(task_id), worker_name)
    if claimed is None:
        return
    # The heartbeat names the task from this process's own record: RQ's worker hash, where
    # the current job id lives, is gone if Redis is flushed or restarted empty meanwhile,
    # and a task no live worker names is taken for lost by the reconciler.
    inflight.add([task_id])
    try:
        run_claimed(settings, claimed, worker_name)
    finally:
        inflight.remove([task_id])


def run_claimed(settings: Settings, claimed: ClaimedTask, worker_name: str) -> None:
    """The claimed task transcribed alone, or with companions as a batch."""
    task_id = str(claimed.task_id)
    if batch_job.batchable(settings, claimed.options, claimed.duration_seconds):
        companions = with_retries(batch_job.claim_companions, settings, claimed.task_id,
                                  claimed.options, worker_name)  # fmt: skip
        if companions:
            transcribe_together(settings, claimed, companions)
            return
    started = time.monotonic()
    try:
        model = engine.get_model(settings)
        checkpoint = Checkpoint(settings, claimed.task_id, started)
        with get_storage(settings).open(claimed.audio_key) as audio:
            transcript = engine.transcribe(
                model, audio, claimed.options, checkpoint, settings.AUDIO_PIECE_SECONDS,
                settings.WHISPER_BATCH_SIZE, max_seconds=settings.MAX_AUDIO_SECONDS,
                seed=seeding.task_seed(settings, claimed.task_id),
            )  # fmt: skip
        with_retries(finish_done, settings, claimed.task_id, transcript,
                     time.monotonic() - started, model.name)  # fmt: skip
    except TaskCanceled as exc:
        logger.info("{}: stopped after {:.1f} s", exc, time.monotonic() - started)
        if exc.deleted:
            forget_job(claimed.task_id)
        return  # not an error: RQ files the job as finished and the worker moves on
    except StorageUnavailable as exc:
        # The bucket is down, not the recording bad: the task waits, uncharged, and the
        # reconciler's next pass enqueues it again.
        with_retries(put_back, settings, claimed.task_id)
        logger.warning("task {}: put back in the queue, storage unavailable: {}", task_id, exc)
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


def transcribe_together(
    settings: Settings, claimed: ClaimedTask, companions: list[batch_job.BatchMember]
) -> None:
    """This job's task and the companions it claimed, as one batch (batch_job.py)."""
    first = batch_job.BatchMember(claimed.task_id, claimed.audio_key, claimed.duration_seconds)
    members = [first, *companions]
    try:
        outcomes = batch_job.run_batch(settings, members, claimed.options)
    except WorkerStopping:
        logger.warning("batch of {}: put back in the queue, the worker is stopping", len(members))
        return
    except (KeyboardInterrupt, SystemExit):
        for member in members:  # only those still `processing`
            with_retries(put_back, settings, member.task_id)
        raise
    if outcomes[0] is not None:
        raise outcomes[0]  # this job's own task failed: RQ files the job as failed


def current_worker_name() -> str:
    job = get_current_job()
    return (job.worker_name if job else None) or f"{socket.gethostname()}.{id(job)}"


def claim_task(settings: Settings, task_id: uuid.UUID, worker_name: str) -> ClaimedTask | None:
    """Mark the task `processing`; None when there is nothing (left) to do."""
    with session_scope(settings.DATABASE_URL) as session:
        claimed = claim_in(session, settings, task_id, worker_name)
    if isinstance(claimed, Task):  # ended without a run: the audio is gone, or wrong model
        log_end(settings, claimed)
        announce_end_from(settings, claimed)
        return None
    return claimed


def claim_in(
    session: Session, settings: Settings, task_id: uuid.UUID, worker_name: str
) -> ClaimedTask | Task | None:
    """The claim inside its transaction; a Task when the task was failed instead."""
    task = session.get(Task, task_id, with_for_update=True)
    if task is None:
        logger.warning("task {}: no such row, job dropped", task_id)
        forget_job(task_id)
        return None
    if task.status != TaskStatus.QUEUED:
        # A lost run is put back to `queued` by the reconciler before it is re-enqueued,
        # so any other state means someone else owns the task (or it has ended).
        logger.info("task {}: already {}, nothing to do", task_id, task.status)
        return None
    if task.audio_key is None:
        task.status, task.error = TaskStatus.FAILED, "audio file is no longer stored"
        task.finished_at = datetime.now(UTC)
        return task
    if task.model != settings.worker_model:
        # Only a misconfiguration gets here (queues are per model): say which.
        task.status, task.finished_at = TaskStatus.FAILED, datetime.now(UTC)
        task.error = (f"reached a worker serving {settings.worker_model} instead of "
                      f"{task.model}: check WHISPER_MODEL / WHISPER_MODELS on every "
                      "process, then retry")  # fmt: skip
        return task
    task.status = TaskStatus.PROCESSING
    task.started_at = datetime.now(UTC)
    task.attempts += 1
    task.progress = 0
    task.error = None
    task.history_logged_at = None  # a retried task's earlier line: this run's end needs its own
    task.worker_name = worker_name
    logger.info(
        "task {}: processing {} (attempt {}, pid {})",
        task_id, task.filename, task.attempts, os.getpid(),
    )  # fmt: skip
    return ClaimedTask(
        task_id=task.id,
        audio_key=task.audio_key,
        options=engine.TranscriptionOptions(**task.options()),
        duration_seconds=task.duration_seconds,
    )
