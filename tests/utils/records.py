"""Task rows, stored recordings and history lines, as tests set them up or check them."""

import io
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app.config import Settings
from models import Task, TaskStatus
from models.db import session_scope
from storage import LocalStorage
from tests.utils.waiting import wait_for
from tests.utils.webhook_receiver import CALLBACK_SECRET

# The columns every task row needs, describing a tiny recording; tests override what they test.
MINIMAL_RECORDING = {
    "filename": "x.flac", "content_type": "audio/flac", "size_bytes": 1, "sha256": "0" * 64,
    "model": "tiny.en",
}  # fmt: skip


def add_task_row(settings: Settings, **columns: Any) -> Task:
    """A task row with `columns` (over MINIMAL_RECORDING's), committed; no recording stored."""
    task = Task(**{**MINIMAL_RECORDING, **columns})
    with session_scope(settings.DATABASE_URL) as session:
        session.add(task)
    return task


def ended_with_callback(settings: Settings, callback_url: str, **columns: Any) -> Task:
    """A task row that ended (`done` unless `columns` say otherwise) owing a signed webhook
    to `callback_url`; nothing is queued for it yet."""
    return add_task_row(
        settings, **{"status": TaskStatus.DONE, "finished_at": datetime.now(UTC),
                     "callback_url": callback_url, "callback_secret": CALLBACK_SECRET, **columns},
    )  # fmt: skip


def make_task(settings: Settings, status: str, age: timedelta, size: int = 1000) -> uuid.UUID:
    """A task row with a real recording of `size` bytes, created `age` ago."""
    task_id = uuid.uuid4()
    key = f"{task_id}.wav"
    LocalStorage(settings.recordings_path).save(key, io.BytesIO(b"\1" * size))
    add_task_row(
        settings, id=task_id, status=status, filename="a.wav", audio_key=key,
        content_type="audio/wav", size_bytes=size,
        text="kept transcript" if status == "done" else None, created_at=datetime.now(UTC) - age,
    )  # fmt: skip
    return task_id


def recording_kept(settings: Settings, task_id: uuid.UUID) -> bool:
    """The task's recording is still stored (and its row agrees)."""
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, task_id)
        assert task is not None
        on_disk = (settings.recordings_path / f"{task_id}.wav").exists()
        assert on_disk == (task.audio_key is not None)
        return on_disk


def task_row(settings: Settings, task_id: str | uuid.UUID) -> Task:
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, uuid.UUID(str(task_id)))
        assert task is not None, task_id
        session.expunge(task)
        return task


def task_count(settings: Settings) -> int:
    with session_scope(settings.DATABASE_URL) as session:
        return session.scalar(select(func.count()).select_from(Task)) or 0


def stored_files(settings: Settings) -> list[str]:
    root = settings.recordings_path
    return sorted(p.name for p in root.iterdir() if p.is_file()) if root.exists() else []


def assert_nothing_stored(settings: Settings) -> None:
    assert task_count(settings) == 0
    assert stored_files(settings) == []


def history_lines(settings: Settings) -> list[dict]:
    path = settings.logs_path / "asr_history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def history_lines_of(
    settings: Settings, task_ids: Iterable[str | uuid.UUID], timeout: float = 10
) -> list[dict]:
    """The history lines of `task_ids`, once each has one. A worker in another process or
    thread writes a task's line just after committing its end, so a test that has seen the
    status may read the log a moment too early."""
    wanted = {str(task_id) for task_id in task_ids}

    def each_written() -> list[dict] | None:
        lines = [line for line in history_lines(settings) if line["task_id"] in wanted]
        return lines if {line["task_id"] for line in lines} == wanted else None

    return wait_for(each_written, timeout, "a history line of each task")  # type: ignore[return-value]
