"""How long a queued task will wait, from the audio ahead of it and recent real-time factors."""

import statistics

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Task, TaskStatus

# Used until the service has finished a task of its own: tiny.en int8 on 2 CPU cores runs at
# about 0.1 (README of ../shared/audio); larger models are slower, so err on the slow side.
DEFAULT_RTF = 0.3
RECENT_TASKS = 50


def recent_rtf(session: Session) -> float:
    """Median real-time factor of the last finished tasks."""
    rtfs: list[float] = [
        rtf
        for rtf in session.scalars(
            select(Task.rtf)
            .where(Task.status == TaskStatus.DONE, Task.rtf.is_not(None))
            .order_by(Task.finished_at.desc())
            .limit(RECENT_TASKS)
        )
        if rtf is not None
    ]
    return statistics.median(rtfs) if rtfs else DEFAULT_RTF


def audio_seconds_ahead(session: Session, task: Task) -> float:
    """Audio still to transcribe before `task`: older queued tasks plus the unfinished part
    of those in progress."""
    queued = session.scalars(
        select(Task.duration_seconds).where(Task.status == TaskStatus.QUEUED, Task.seq < task.seq)
    ).all()
    processing = session.execute(
        select(Task.duration_seconds, Task.progress).where(Task.status == TaskStatus.PROCESSING)
    ).all()
    ahead = sum(d or 0.0 for d in queued)
    ahead += sum((d or 0.0) * (100 - p) / 100 for d, p in processing)
    return ahead


def estimated_wait(session: Session, task: Task, live_workers: int) -> float | None:
    """Seconds until a worker starts `task`; None when no worker is alive to start it."""
    if live_workers == 0:
        return None
    seconds = audio_seconds_ahead(session, task) * recent_rtf(session) / live_workers
    return round(seconds, 1)
