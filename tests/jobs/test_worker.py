"""A long-running worker process: progress while it transcribes, and its log files."""

import signal
import time
import uuid

from app.config import Settings
from models import Task
from models.db import session_scope
from tests.app.test_submit import result, submit
from tests.helpers import audio_file, wait_for


def test_progress_rises_while_a_long_file_is_processed(client, live_worker, settings: Settings):
    task_id = submit(client, audio_file("multilingual.mp3")).json()["task_id"]
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = result(client, task_id)
        if body["status"] == "processing":
            seen.append(body["progress"])
        elif body["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert body["status"] == "done", body
    assert any(0 < p < 100 for p in seen), seen
    assert seen == sorted(seen)
    with session_scope(settings.DATABASE_URL) as session:
        assert session.get(Task, uuid.UUID(task_id)).progress == 100  # type: ignore[union-attr]


def test_api_worker_and_error_logs_are_written(client, live_worker, settings: Settings):
    good = submit(client, audio_file("jfk.flac")).json()["task_id"]
    wait_for(lambda: result(client, good)["status"] == "done", timeout=60, message="jfk done")

    logs = settings.logs_path
    access = (logs / "access.log").read_text()
    assert '"POST /api/v1/asr/submit" 202' in access
    assert f'"GET /api/v1/asr/result/{good}" 200' in access
    assert "queued jfk.flac" in (logs / "api.log").read_text()
    worker_log = (logs / "worker.log").read_text()
    assert "model tiny.en loaded" in worker_log and f"task {good}: done" in worker_log
    assert '"POST ' not in (logs / "api.log").read_text()  # access lines have their own file

    live_worker.send_signal(signal.SIGSTOP)  # so the file is gone before the worker looks
    try:
        bad = submit(client, audio_file("hotwords.mp3")).json()["task_id"]
        for path in settings.recordings_path.glob(f"*{bad}*"):
            path.unlink()
    finally:
        live_worker.send_signal(signal.SIGCONT)
    wait_for(lambda: result(client, bad)["status"] == "failed", timeout=60, message="failure")
    error_log = wait_for(lambda: (logs / "error.log").read_text(), timeout=5, message="error.log")
    assert f"task {bad}: failed: audio file is missing from storage" in str(error_log)
