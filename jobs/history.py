"""The JSONL history log: one line per task reaching `done` or `failed`."""

import fcntl
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models import Task

HISTORY_FILE = "asr_history.jsonl"


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
