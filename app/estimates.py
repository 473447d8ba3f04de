"""How long a queued task will wait, from the audio ahead of it and recent real-time factors."""

import statistics

from sqlalchemy import and_, func, select
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


def audio_seconds_ahead(session: Session, before_seq: int | None = None) -> float:
    """Audio still to transcribe ahead of a task: queued tasks older than it (all of them
    when `before_seq` is None) plus the unfinished part of those in progress. One query: it
    is part of every submit's answer."""
    queued = Task.status == TaskStatus.QUEUED
    # A worker may have started the task itself already: it is not ahead of itself.
    in_progress = Task.status == TaskStatus.PROCESSING
    if before_seq is not None:
        queued = and_(queued, Task.seq < before_seq)
        in_progress = and_(in_progress, Task.seq != before_seq)
    duration = func.coalesce(Task.duration_seconds, 0.0)
    ahead = session.scalar(
        select(
            func.coalesce(func.sum(duration).filter(queued), 0.0)
            + func.coalesce(
                func.sum(duration * (100 - Task.progress) / 100).filter(in_progress), 0.0
            )
        ).where(Task.status.in_((TaskStatus.QUEUED, TaskStatus.PROCESSING)))
    )
    return float(ahead or 0.0)


def estimated_wait(
    session: Session, live_workers: int, before_seq: int | None = None, rtf: float | None = None
) -> float | None:
    """Seconds until a worker starts the task numbered `before_seq` (a new task when None);
    None when no worker is alive to start it. `rtf`: a recent `recent_rtf` already at hand."""
    if live_workers == 0:
        return None
    rtf = recent_rtf(session) if rtf is None else rtf
    seconds = audio_seconds_ahead(session, before_seq) * rtf / live_workers
    return round(seconds, 1)
