"""The wait estimate: audio ahead x recent real-time factor / live workers."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.estimates import DEFAULT_RTF, audio_seconds_ahead, estimated_wait, recent_rtf
from models import Task
from models.db import session_scope


def add_task(session, seq: int, status: str, duration: float, **fields) -> Task:
    task = Task(
        id=uuid.uuid4(), seq=seq, status=status, filename=f"{seq}.wav", audio_key=f"{seq}.wav",
        content_type="audio/wav", size_bytes=1, sha256="0" * 64, duration_seconds=duration,
        model="tiny.en", **fields,
    )  # fmt: skip
    session.add(task)
    return task


def test_estimate_counts_older_queued_audio_and_the_unfinished_part(settings):
    now = datetime.now(UTC)
    with session_scope(settings.DATABASE_URL) as session:
        add_task(session, 1, "done", 100, rtf=0.2, finished_at=now - timedelta(minutes=2))
        add_task(session, 2, "done", 100, rtf=0.4, finished_at=now - timedelta(minutes=1))
        add_task(session, 3, "done", 100, rtf=0.9, finished_at=now)
        add_task(session, 4, "processing", 60, progress=50)
        add_task(session, 5, "queued", 40)
        add_task(session, 6, "queued", 20)
        session.flush()
        assert recent_rtf(session) == pytest.approx(0.4)
        assert audio_seconds_ahead(session, before_seq=6) == pytest.approx(30 + 40)
        assert audio_seconds_ahead(session) == pytest.approx(30 + 40 + 20)
        assert estimated_wait(session, 2, before_seq=6) == pytest.approx(70 * 0.4 / 2)
        assert estimated_wait(session, 0, before_seq=6) is None


def test_estimate_uses_a_default_rtf_before_any_task_finished(settings):
    with session_scope(settings.DATABASE_URL) as session:
        add_task(session, 1, "queued", 50)
        add_task(session, 2, "queued", 10)
        session.flush()
        assert estimated_wait(session, 1, before_seq=2) == pytest.approx(50 * DEFAULT_RTF)


def test_a_task_a_worker_already_started_is_not_ahead_of_itself(settings):
    """The submit answer's estimate is computed after the enqueue; a worker may have taken
    the task by then (it was ahead of itself: 11 s x the default real-time factor)."""
    with session_scope(settings.DATABASE_URL) as session:
        add_task(session, 1, "processing", 60, progress=50)
        add_task(session, 2, "processing", 11, progress=0)  # the new task, already started
        session.flush()
        assert audio_seconds_ahead(session, before_seq=2) == pytest.approx(30)
        assert estimated_wait(session, 1, before_seq=2) == pytest.approx(30 * DEFAULT_RTF)
