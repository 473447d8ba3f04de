"""Postgres is the system of record; this makes Redis agree with it.

- A task `queued` in Postgres whose job is not waiting in the queue (Redis lost its data,
  the enqueue failed after the commit, a worker put it back) is enqueued again.
- A task `processing` that no live worker names lost its run: its worker is alive and moved
  on (it failed to record the run), or is silent and established dead (SIGKILL, OOM, a lost
  host: liveness.py; a silent worker still alive, e.g. starved of CPU, keeps its run).
  The task is queued again, up to MAX_ATTEMPTS charged runs; then it fails with "worker
  died N times while processing". A run taken back from a silent worker that beats again
  afterwards is not charged.
- An ended task that still owes its client a webhook or a Telegram reply (not delivered, not
  given up) and has no delivery job queued, scheduled or running gets its next attempt queued.
- An ended task whose history line its process died before writing gets it written
  (jobs/history.py).

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
from jobs.delivery import telegram_replies, webhooks
from jobs.delivery.announce import announce_end_from
from jobs.history import log_end, write_missing
from jobs.queues import (
    connect_redis,
    enqueue_transcription,
    live_workers,
    model_queue,
    previous_run_active,
    queue_position,
    redis_lock,
)
from jobs.upkeep.liveness import judge, last_seen, refund_runs_of_live_workers, remember_taken_back
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
    # Runs left to silent workers not established dead (starved, or not silent for long).
    suspect: list[uuid.UUID] = field(default_factory=list)
    # Runs taken back earlier from workers that have beaten since: not charged after all.
    refunded: list[uuid.UUID] = field(default_factory=list)
    # Ended tasks whose history line their dying process did not write (jobs/history.py).
    relogged: list[uuid.UUID] = field(default_factory=list)
    skipped: bool = False

    def summary(self) -> str:
        if self.skipped:
            return "reconcile skipped: another one is running"
        return (f"reconcile: {len(self.requeued)} queued tasks enqueued again, "
                f"{len(self.recovered)} tasks of lost runs queued again, "
                f"{len(self.failed)} failed after too many attempts, "
                f"{len(self.suspect)} left to silent workers not known dead, "
                f"{len(self.refunded)} taken back from live workers refunded, "
                f"{len(self.redelivered)} deliveries queued again, "
                f"{len(self.relogged)} history lines written late")  # fmt: skip


def reconcile(settings: Settings | None = None, redis: Redis | None = None) -> ReconcileReport:
    """One pass (the maintenance job, and the worker's start-up step)."""
    settings = settings or get_settings()
    redis = redis or connect_redis(settings.REDIS_URL)
    with redis_lock(redis, LOCK_KEY, LOCK_SECONDS) as acquired:
        report = ReconcileReport(skipped=not acquired)
        if acquired:
            cutoff = datetime.now(UTC) - timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)
            # Before any run is judged: a refund may keep a task under MAX_ATTEMPTS.
            report.refunded = refund_runs_of_live_workers(settings, redis)
            recover_lost_runs(settings, redis, cutoff, report)
            for task_id, model in _queued(settings, cutoff):
                queue = model_queue(redis, settings, model)
                if queue_position(queue, task_id) is None and not previous_run_active(
                    queue, task_id
                ):
                    enqueue_transcription(queue, task_id, settings, replace=True)
                    report.requeued.append(task_id)
                    logger.warning("task {}: queued without a job; enqueued again", task_id)
            report.redelivered += webhooks.requeue_owed(settings, redis, cutoff)
            report.redelivered += telegram_replies.requeue_owed(settings, redis, cutoff)
            alive = {worker.name for worker in live_workers(redis)}
            report.relogged = write_missing(settings, alive, cutoff)
    if any((report.requeued, report.recovered, report.failed, report.redelivered,
            report.suspect, report.refunded, report.relogged, report.skipped)):  # fmt: skip
        logger.info(report.summary())
    return report


def recover_lost_runs(
    settings: Settings, redis: Redis, cutoff: datetime, report: ReconcileReport
) -> None:
    """Queue again (or fail) the `processing` tasks whose run is lost."""
    workers = live_workers(redis)
    # A live worker names every task it is transcribing: its current job's and a batch's.
    running = {task for w in workers for task in [*w.tasks, w.current_task] if task}
    alive = {w.name for w in workers}
    for task_id, model, worker_name, started_at in _runs(settings, cutoff):
        if str(task_id) in running:
            continue
        seen = None
        if worker_name in alive:  # it says it is not running this task: established
            reason, presumed = "its worker is alive and no longer runs it", False
        else:
            seen = last_seen(redis, worker_name)
            verdict = judge(settings, seen, started_at)
            if not verdict.dead:
                report.suspect.append(task_id)
                logger.warning("task {}: worker {} is silent, not dead ({}); its run is left "
                               "alone", task_id, worker_name, verdict.reason)  # fmt: skip
                continue
            reason, presumed = verdict.reason, verdict.presumed
        queue = model_queue(redis, settings, model)
        if recover_task(settings, queue, task_id, report, f"{worker_name}: {reason}") and presumed:
            remember_taken_back(redis, task_id, worker_name, seen)


def recover_task(
    settings: Settings, queue: Queue, task_id: uuid.UUID, report: ReconcileReport, why: str
) -> bool:
    """Queue again (or fail) a task whose run was lost; False if it was not `processing`."""
    status = release_lost_run(settings, task_id, why)
    if status == TaskStatus.QUEUED:
        # replace: drops the lost run's job from RQ's started registry, so RQ's own
        # abandoned-job cleanup never fires for it later.
        enqueue_transcription(queue, task_id, settings, replace=True)
        report.recovered.append(task_id)
    elif status == TaskStatus.FAILED:
        report.failed.append(task_id)
    return status is not None


def release_lost_run(
    settings: Settings, task_id: uuid.UUID, why: str = "RQ found its job abandoned"
) -> TaskStatus | None:
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
        log_end(settings, task)
        announce_end_from(settings, task)
        logger.error("task {}: {}", task_id, task.error)
        return TaskStatus.FAILED
    logger.warning("task {}: its run on {} was lost ({}); queued again", task_id, dead_worker, why)
    return TaskStatus.QUEUED


def _queued(settings: Settings, older_than: datetime) -> list[tuple[uuid.UUID, str]]:
    """(id, model) of the tasks queued before `older_than` (the API commits a row a moment
    before it enqueues)."""
    with session_scope(settings.DATABASE_URL) as session:
        rows = session.execute(
            select(Task.id, Task.model)
            .where(Task.status == TaskStatus.QUEUED, Task.created_at < older_than)
            .order_by(Task.seq)
        )
        return [(task_id, model) for task_id, model in rows]


def _runs(settings: Settings, older_than: datetime) -> list[tuple[uuid.UUID, str, str, datetime]]:
    """(id, model, worker, started_at) of the tasks `processing` since before `older_than` (a
    worker claims a moment before its heartbeat names the task)."""
    with session_scope(settings.DATABASE_URL) as session:
        rows = session.execute(
            select(Task.id, Task.model, Task.worker_name, Task.started_at)
            .where(Task.status == TaskStatus.PROCESSING, Task.started_at < older_than)
            .order_by(Task.seq)
        )
        return [(task_id, model, worker or "", started) for task_id, model, worker, started in rows
                if started is not None]  # fmt: skip
