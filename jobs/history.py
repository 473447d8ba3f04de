"""The JSONL history log: one line per task reaching `done` or `failed`.

A line is written after the commit that ends the task (it never describes a state Postgres
does not hold), then noted on the row (`history_logged_at`). A process killed in between
leaves an ended task without its note: the reconciler writes that line (`write_missing`),
unless the log on its host already has it.
"""

import fcntl
import json
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from models import Task, TaskStatus
from models.db import session_scope

HISTORY_FILE = "asr_history.jsonl"
LOGGED_STATUSES = (TaskStatus.DONE, TaskStatus.FAILED)
# A live worker writes its line within milliseconds of its commit. One that has not after
# this long never will: its name outlived the process (a container restarted with the same
# hostname and pid).
LIVE_WORKER_GRACE = timedelta(minutes=10)


def history_line(task: Task) -> dict[str, Any]:
    return {
        "task_id": str(task.id),
        "file": task.filename,
        "text": task.text,
        "created_at": task.created_at.isoformat() if task.created_at else None,
        "finished_at": (task.finished_at or datetime.now(UTC)).isoformat(),
        "duration": task.duration_seconds,
        "status": task.status,
        "error": task.error,
        "worker": task.worker_name,
        "model": task.model,
        "language": task.detected_language,
        "rtf": task.rtf,
        "metadata": task.client_metadata,
    }


def append_history(logs_path: Path, task: Task) -> None:
    """Append one line; the lock keeps lines whole when several workers share the file."""
    logs_path.mkdir(parents=True, exist_ok=True)
    line = json.dumps(history_line(task), ensure_ascii=False) + "\n"
    with (logs_path / HISTORY_FILE).open("a", encoding="utf-8") as log:
        fcntl.flock(log, fcntl.LOCK_EX)
        try:
            log.write(line)
        finally:
            fcntl.flock(log, fcntl.LOCK_UN)


def log_end(settings: Settings, task: Task) -> None:
    """Write the line of `task`, whose end is committed, and note on its row that it is.
    The note is best effort: the end is stored, and a note the database refused now is made
    by the reconciler, which finds the line in this host's log."""
    append_history(settings.logs_path, task)
    try:
        note_logged(settings, task.id)
    except SQLAlchemyError as exc:
        logger.warning("task {}: history line written, not noted on the row: {}", task.id, exc)


def note_logged(settings: Settings, task_id: uuid.UUID) -> None:
    with session_scope(settings.DATABASE_URL) as session:
        session.execute(update(Task).where(Task.id == task_id).values(history_logged_at=func.now()))


def write_missing(
    settings: Settings, live_workers: Collection[str], ended_before: datetime
) -> list[uuid.UUID]:
    """Write the line of every task that ended before `ended_before` without one being noted,
    whose worker is not alive to write it (or has not for LIVE_WORKER_GRACE); the tasks. A
    line already in this host's log is only noted, not written again."""
    long_ago = datetime.now(UTC) - LIVE_WORKER_GRACE
    not_alive = or_(Task.worker_name.is_(None), Task.worker_name.not_in(list(live_workers)))
    with session_scope(settings.DATABASE_URL) as session:
        owed = session.scalars(
            select(Task)
            .where(Task.status.in_(LOGGED_STATUSES), Task.history_logged_at.is_(None))
            .where(Task.finished_at < ended_before, or_(not_alive, Task.finished_at < long_ago))
            .order_by(Task.finished_at)
        ).all()
    if not owed:
        return []
    present = logged_ids(settings.logs_path, {str(task.id) for task in owed})
    for task in owed:
        if str(task.id) in present:
            note_logged(settings, task.id)
        else:
            log_end(settings, task)
            logger.warning("task {}: its history line was missing; written", task.id)
    return [task.id for task in owed]


def logged_ids(logs_path: Path, wanted: set[str]) -> set[str]:
    """Which of the `wanted` task ids have a line in this host's log."""
    path = logs_path / HISTORY_FILE
    if not path.exists():
        return set()
    found = set()
    with path.open(encoding="utf-8") as log:
        for line in log:
            if any(task_id in line for task_id in wanted):
                task_id = json.loads(line).get("task_id")
                if task_id in wanted:
                    found.add(task_id)
    return found
