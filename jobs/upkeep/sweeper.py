"""Retention: remove old recordings (and, if configured, old tasks), orphan files, and note
recordings that vanished. Run by `rq cron` on the maintenance queue, or by
scripts/sweep.py. Idempotent; a Redis lock keeps two sweeps from overlapping.

Only recordings of ended tasks (done, failed, canceled) are ever removed.
"""

import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from loguru import logger
from redis import Redis
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from jobs.queues import connect_redis, model_queues, redis_lock, remove_job
from models import Task
from models.db import session_scope
from models.task import FINAL_STATUSES
from storage import Storage, get_storage

LOCK_KEY = "asr:sweep:lock"
LOCK_SECONDS = 600
# A file newer than this is never an orphan: its row may not be committed yet.
ORPHAN_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Removal:
    key: str
    size: int
    reason: str
    task_id: uuid.UUID | None = None


@dataclass
class SweepReport:
    dry_run: bool
    recordings: list[Removal] = field(default_factory=list)
    orphans: list[Removal] = field(default_factory=list)
    vanished: list[uuid.UUID] = field(default_factory=list)
    tasks_deleted: list[uuid.UUID] = field(default_factory=list)
    skipped: str | None = None

    @property
    def bytes_freed(self) -> int:
        return sum(r.size for r in self.recordings + self.orphans)

    def summary(self) -> str:
        if self.skipped:
            return f"sweep skipped: {self.skipped}"
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"sweep {verb} {len(self.recordings)} recordings, {len(self.orphans)} orphan files "
            f"({self.bytes_freed} bytes) and {len(self.tasks_deleted)} old tasks; "
            f"{len(self.vanished)} recordings had vanished"
        )


def sweep(dry_run: bool = False, settings: Settings | None = None) -> SweepReport:
    """One retention pass with the configured policies (the maintenance job)."""
    settings = settings or get_settings()
    redis = connect_redis(settings.REDIS_URL)
    with sweep_lock(redis) as acquired:
        if not acquired:
            report = SweepReport(dry_run, skipped="another sweep is running")
        else:
            report = Sweeper(settings, get_storage(settings), redis, dry_run).run()
    logger.info(report.summary())
    return report


def sweep_lock(redis: Redis) -> AbstractContextManager[bool]:
    return redis_lock(redis, LOCK_KEY, LOCK_SECONDS)


class Sweeper:
    def __init__(self, settings: Settings, storage: Storage, redis: Redis, dry_run: bool):
        self.settings = settings
        self.storage = storage
        self.queues = model_queues(redis, settings)
        self.dry_run = dry_run
        self.now = datetime.now(UTC)
        self.report = SweepReport(dry_run)

    def run(self) -> SweepReport:
        self.delete_old_tasks()
        self.note_vanished_recordings()
        for task_id, reason in self.recordings_to_remove():
            self.remove_recording(task_id, reason)
        self.remove_orphans()
        return self.report

    def delete_old_tasks(self) -> None:
        if self.settings.TRANSCRIPT_MAX_AGE is None:
            return
        cutoff = self.now - self.settings.TRANSCRIPT_MAX_AGE
        for task_id in self._ended_task_ids(Task.created_at < cutoff):
            with session_scope(self.settings.DATABASE_URL) as session:
                task = self._lock_ended(session, task_id)
                if task is None:
                    continue
                if task.audio_key:
                    self._drop_file(task.audio_key, task.size_bytes, "task older than "
                                    "TRANSCRIPT_MAX_AGE", task.id)  # fmt: skip
                self.report.tasks_deleted.append(task.id)
                if not self.dry_run:
                    session.delete(task)
            if not self.dry_run:
                for queue in self.queues:
                    remove_job(queue, task_id)
            logger.info("sweep: task {} {}deleted (older than TRANSCRIPT_MAX_AGE)", task_id,
                        "would be " if self.dry_run else "")  # fmt: skip

    def note_vanished_recordings(self) -> None:
        """Rows whose file is gone get marked, so their audio endpoint answers 410."""
        with session_scope(self.settings.DATABASE_URL) as session:
            rows = session.execute(
                select(Task.id, Task.audio_key).where(
                    Task.audio_key.is_not(None), Task.status.in_(FINAL_STATUSES)
                )
            ).all()
        for task_id, key in rows:
            if key is None or self.storage.exists(key):
                continue
            self.report.vanished.append(task_id)
            if not self.dry_run:
                self._mark_removed(task_id, key, "the file vanished from storage")
            logger.warning("sweep: task {}: recording {} had vanished", task_id, key)

    def recordings_to_remove(self) -> list[tuple[uuid.UUID, str]]:
        """Ended tasks' recordings that break a policy, oldest first, with the reason."""
        with session_scope(self.settings.DATABASE_URL) as session:
            stored = session.execute(
                select(Task.id, Task.status, Task.created_at, Task.size_bytes)
                .where(Task.audio_key.is_not(None), Task.id.not_in(self.report.vanished))
                .order_by(Task.created_at, Task.seq)
            ).all()
        count, total = len(stored), sum(row.size_bytes for row in stored)
        max_age = self.settings.RECORDING_MAX_AGE
        max_count = self.settings.MAX_RECORDINGS
        max_bytes = int(self.settings.RECORDINGS_MAX_BYTES)
        chosen = []
        for row in stored:
            if row.status not in FINAL_STATUSES:
                continue  # in flight: never touched, but it still counts toward the limits
            if max_age is not None and row.created_at < self.now - max_age:
                reason = "older than RECORDING_MAX_AGE"
            elif max_count and count > max_count:
                reason = f"more than MAX_RECORDINGS={max_count}"
            elif max_bytes and total > max_bytes:
                reason = f"recordings over RECORDINGS_MAX_BYTES={max_bytes}"
            else:
                continue
            chosen.append((row.id, reason))
            count, total = count - 1, total - row.size_bytes
        return chosen

    def remove_recording(self, task_id: uuid.UUID, reason: str) -> None:
        with session_scope(self.settings.DATABASE_URL) as session:
            task = self._lock_ended(session, task_id)
            if task is None or task.audio_key is None:
                return  # retried or deleted since it was chosen
            self._drop_file(task.audio_key, task.size_bytes, reason, task.id)
            if not self.dry_run:
                task.audio_key = None
                task.audio_removed_at, task.audio_removed_reason = self.now, reason

    def remove_orphans(self) -> None:
        """Files no row refers to (a crash between writing the file and the row, or a row
        deleted by hand)."""
        with session_scope(self.settings.DATABASE_URL) as session:
            referenced = set(session.scalars(select(Task.audio_key).where(
                Task.audio_key.is_not(None))))  # fmt: skip
        for stored in self.storage.list():
            if stored.key in referenced or stored.modified_at > self.now - ORPHAN_GRACE:
                continue
            self.report.orphans.append(Removal(stored.key, stored.size, "orphan"))
            if not self.dry_run:
                self.storage.delete(stored.key)
            logger.info("sweep: orphan file {} ({} bytes) {}removed", stored.key, stored.size,
                        "would be " if self.dry_run else "")  # fmt: skip

    def _ended_task_ids(self, condition: ColumnElement[bool]) -> list[uuid.UUID]:
        with session_scope(self.settings.DATABASE_URL) as session:
            return list(session.scalars(
                select(Task.id).where(condition, Task.status.in_(FINAL_STATUSES))
            ))  # fmt: skip

    def _lock_ended(self, session: Session, task_id: uuid.UUID) -> Task | None:
        """The row, locked, if it is still an ended task (a retry may have queued it)."""
        task = session.get(Task, task_id, with_for_update={"skip_locked": True})
        return task if task is not None and task.status in FINAL_STATUSES else None

    def _drop_file(self, key: str, size: int, reason: str, task_id: uuid.UUID) -> None:
        self.report.recordings.append(Removal(key, size, reason, task_id))
        if not self.dry_run:
            self.storage.delete(key)
        logger.info("sweep: task {}: recording {} ({} bytes) {}removed: {}", task_id, key, size,
                    "would be " if self.dry_run else "", reason)  # fmt: skip

    def _mark_removed(self, task_id: uuid.UUID, key: str, reason: str) -> None:
        with session_scope(self.settings.DATABASE_URL) as session:
            task = self._lock_ended(session, task_id)
            if task is not None and task.audio_key == key:
                task.audio_key = None
                task.audio_removed_at, task.audio_removed_reason = self.now, reason
