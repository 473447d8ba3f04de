"""Postgres is the system of record; this makes Redis agree with it.

- A task `queued` in Postgres whose job is not waiting in the queue (Redis lost its data,
  the enqueue failed after the commit, a worker put it back) is enqueued again.
- A task `processing` whose worker's heartbeat has expired (SIGKILL, OOM, a lost host) is
  queued again, up to MAX_ATTEMPTS runs; then it fails with "worker died N times while
  processing".
- An ended task that still owes its client a webhook or a Telegram reply (not delivered, not
  given up) and has no delivery job queued, scheduled or running gets its next attempt queued.

Runs at every worker start and every RECONCILE_INTERVAL_SECONDS from the scheduler. RQ alone
would notice an abandoned SimpleWorker job only after job_timeout + 60 s.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from loguru import logger
from redis import Redis
from rq import Queue
from sqlalchemy import select

from app.config import Settings, get_settings
from jobs import telegram_replies, webhooks
from jobs.announce import announce_end_from
from jobs.history import append_history
from jobs.queues import (
    connect_redis,
    enqueue_transcription,
    live_workers,
    model_queue,
    previous_run_active,
    queue_position,
    redis_lock,
)
from models import Task, TaskStatus
from models.db import session_scope

LOCK_KEY = "asr:reconcile:lock"
LOCK_SECONDS = 600


@dataclass
class ReconcileReport:
    requeued: list[uuid.UUID] = field(default_factory=list)
    recovered: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    # Ended tasks whose webhook or Telegram reply was owed without a job.
    redelivered: list[uuid.UUID] = field(default_factory=list)
    skipped: bool = False

    def summary(self) -> str:
        if self.skipped:
            return "reconcile skipped: another one is running"
        return (f"reconcile: {len(self.requeued)} queued tasks enqueued again, "
                f"{len(self.recovered)} tasks of dead workers queued again, "
                f"{len(self.failed)} failed after too many attempts, "
                f"{len(self.redelivered)} deliveries queued again")  # fmt: skip


def reconcile(settings: Settings | None = None, redis: Redis | None = None) -> ReconcileReport:
    """One pass (the maintenance job, and the worker's start-up step)."""
    settings = settings or get_settings()
    redis = redis or connect_redis(settings.REDIS_URL)
    with redis_lock(redis, LOCK_KEY, LOCK_SECONDS) as acquired:
        report = ReconcileReport(skipped=not acquired)
        if acquired:
            cutoff = datetime.now(UTC) - timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)
            # Tasks some live worker reports as its current one; any other `processing` task
            # lost its run (the worker died, or moved on after failing to record it).
            running = set()
            for worker in live_workers(redis):
                running.update(worker.tasks)
                if worker.current_task:
                    running.add(worker.current_task)
            for task_id, model in _tasks(settings, TaskStatus.PROCESSING, cutoff):
                if str(task_id) not in running:
                    recover_task(settings, model_queue(redis, settings, model), task_id, report)
            for task_id, model in _tasks(settings, TaskStatus.QUEUED, cutoff):
                queue = model_queue(redis, settings, model)
                if queue_position(queue, task_id) is None and not previous_run_active(
                    queue, task_id
                ):
                    enqueue_transcription(queue, task_id, settings, replace=True)
                    report.requeued.append(task_id)
                    logger.warning("task {}: queued without a job; enqueued again", task_id)
            report.redelivered += webhooks.requeue_owed(settings, redis, cutoff)
            report.redelivered += telegram_replies.requeue_owed(settings, redis, cutoff)
    if report.requeued or report.recovered or report.failed or report.redelivered or report.skipped:
        logger.info(report.summary())
    return report


def recover_task(
    settings: Settings, queue: Queue, task_id: uuid.UUID, report: ReconcileReport
) -> None:
    """Queue again (or fail) a task whose run was lost."""
    status = release_lost_run(settings, task_id)
    if status == TaskStatus.QUEUED:
        # replace: drops the lost run's job from RQ's started registry, so RQ's own
        # abandoned-job cleanup never fires for it later.
        enqueue_transcription(queue, task_id, settings, replace=True)
        report.recovered.append(task_id)
    elif status == TaskStatus.FAILED:
        report.failed.append(task_id)


def release_lost_run(settings: Settings, task_id: uuid.UUID) -> TaskStatus | None:
    """The row part of recovery: `processing` → `queued`, or `failed` once MAX_ATTEMPTS runs
    were lost. Returns the new status, or None if the task was not `processing`."""
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, task_id, with_for_update={"skip_locked": True})
        if task is None or task.status != TaskStatus.PROCESSING:
            return None
        dead_worker = task.worker_name
        task.progress = 0
        if task.attempts >= settings.MAX_ATTEMPTS:
            task.status = TaskStatus.FAILED
            task.error = f"worker died {task.attempts} times while processing"
            task.finished_at = datetime.now(UTC)
        else:
            task.status = TaskStatus.QUEUED
    if task.status == TaskStatus.FAILED:
        append_history(settings.logs_path, task)
        announce_end_from(settings, task)
        logger.error("task {}: {}", task_id, task.error)
        return TaskStatus.FAILED
    logger.warning("task {}: its run on {} was lost; queued again", task_id, dead_worker)
    return TaskStatus.QUEUED


def _tasks(
    settings: Settings, status: TaskStatus, older_than: datetime
) -> list[tuple[uuid.UUID, str]]:
    """(id, model) of the tasks in `status` since before `older_than`."""
    # Started (processing) or created (queued) before the cutoff: the API commits a row a
    # moment before it enqueues, and a worker claims a moment before its first heartbeat.
    moment = Task.started_at if status == TaskStatus.PROCESSING else Task.created_at
    with session_scope(settings.DATABASE_URL) as session:
        rows = session.execute(
            select(Task.id, Task.model)
            .where(Task.status == status, moment < older_than)
            .order_by(Task.seq)
        )
        return [(task_id, model) for task_id, model in rows]
