"""Retry, cancel and delete, against a real worker process."""

import time
import uuid
from pathlib import Path

import av
import numpy as np
import pytest
from redis import Redis
from sqlalchemy import select

from app.config import Settings
from jobs.queues import live_workers
from models import Task
from models.db import session_scope
from tests.utils.api import result, submit
from tests.utils.audio import JFK_LINE, audio_file, normalize
from tests.utils.records import history_lines, history_lines_of, task_row
from tests.utils.waiting import wait_for


def stored_key(settings: Settings, task_id: str) -> str:
    with session_scope(settings.DATABASE_URL) as session:
        key = session.scalar(select(Task.audio_key).where(Task.id == uuid.UUID(task_id)))
    assert key is not None
    return key


def redis_mentions(redis: Redis, task_id: str) -> list[str]:
    """Every Redis key whose name or content mentions the task id."""
    found = []
    for raw_key in redis.scan_iter(count=500):
        key = raw_key.decode()
        kind = redis.type(raw_key).decode()
        if kind == "string":
            content = [redis.get(raw_key) or b""]
        elif kind == "list":
            content = redis.lrange(raw_key, 0, -1)
        elif kind == "zset":
            content = redis.zrange(raw_key, 0, -1)
        elif kind == "set":
            content = list(redis.smembers(raw_key))
        elif kind == "hash":
            content = list(redis.hgetall(raw_key).values())
        else:
            content = []
        if task_id in key or any(task_id.encode() in item for item in content):
            found.append(key)
    return found


def wait_until_transcribing(client, task_id: str) -> None:
    """Until the worker is past decoding and into the segments (progress was written)."""
    wait_for(lambda: result(client, task_id).get("progress"), timeout=60,
             message="the long task to report progress")  # fmt: skip


def test_retry_of_a_failed_task_ends_done_with_text(client, run_worker, settings):
    jfk = audio_file("jfk.flac")
    task_id = submit(client, jfk).json()["task_id"]
    recording = settings.recordings_path / stored_key(settings, task_id)
    recording.unlink()
    run_worker()
    assert result(client, task_id)["status"] == "failed"

    recording.write_bytes(jfk.read_bytes())  # the storage is back
    retry = client.post(f"/api/v1/asr/retry/{task_id}")
    assert retry.status_code == 202, retry.text
    assert retry.json()["status"] == "queued" and retry.json()["position"] == 1
    queued = result(client, task_id)
    assert queued["status"] == "queued" and queued["error"] is None
    run_worker()

    done = result(client, task_id)
    assert done["status"] == "done" and JFK_LINE in normalize(done["text"])
    assert done["attempts"] == 2
    assert [line["status"] for line in history_lines(settings)] == ["failed", "done"]


def test_retry_refuses_active_and_done_tasks_unless_forced(client, run_worker):
    task_id = submit(client, audio_file("hotwords.mp3")).json()["task_id"]
    conflict = client.post(f"/api/v1/asr/retry/{task_id}")
    assert conflict.status_code == 409
    assert "queued" in conflict.json()["detail"]
    run_worker()
    done_conflict = client.post(f"/api/v1/asr/retry/{task_id}")
    assert done_conflict.status_code == 409 and "force=true" in done_conflict.json()["detail"]

    assert client.post(f"/api/v1/asr/retry/{task_id}?force=true").status_code == 202
    run_worker()
    again = result(client, task_id)
    assert again["status"] == "done" and again["attempts"] == 2
    assert client.post(f"/api/v1/asr/retry/{uuid.uuid4()}").status_code == 404


def test_cancel_of_a_queued_task_removes_it_from_the_queue(client, run_worker, settings):
    first = submit(client, audio_file("hotwords.mp3")).json()["task_id"]
    second = submit(client, audio_file("jfk.flac")).json()["task_id"]
    canceled = client.post(f"/api/v1/asr/cancel/{first}")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["retry_url"].endswith(f"/retry/{first}")
    assert result(client, second)["position"] == 1
    assert client.get("/api/v1/asr/queue/status").json()["queued"] == 1

    run_worker()

    assert result(client, first)["status"] == "canceled"
    assert result(client, first)["attempts"] == 0  # never started
    assert result(client, second)["status"] == "done"
    assert client.post(f"/api/v1/asr/cancel/{first}").status_code == 200  # idempotent
    ended = client.post(f"/api/v1/asr/cancel/{second}")
    assert ended.status_code == 409 and "already ended (done)" in ended.json()["detail"]

    assert client.post(f"/api/v1/asr/retry/{first}").status_code == 202
    run_worker()
    assert result(client, first)["status"] == "done"


def test_cancel_of_a_running_long_task_stops_it_within_seconds(
    client, live_worker, redis, settings, long_wav
):
    long_id = submit(client, long_wav).json()["task_id"]
    next_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    wait_until_transcribing(client, long_id)
    [worker] = wait_for(
        lambda: [w for w in live_workers(redis) if w.current_task == long_id], timeout=10,
        message="the heartbeat to show the running task",
    )  # fmt: skip
    assert worker.state == "busy"

    response = client.post(f"/api/v1/asr/cancel/{long_id}")
    assert response.status_code == 200 and response.json()["status"] == "canceled"

    # The run notices within a second or so; the whole file would take minutes (60 s: stuck).
    wait_for(lambda: result(client, next_id)["status"] == "done", timeout=60, message="next")
    long_task = result(client, long_id)
    assert long_task["status"] == "canceled" and long_task["text"] is None
    assert task_row(settings, long_id).progress < 50  # it went no further
    history_lines_of(settings, [next_id])
    assert [line["task_id"] for line in history_lines(settings)] == [next_id]


@pytest.fixture
def minute_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces of a minute (AUDIO_PIECE_SECONDS' least) for workers started after this."""
    monkeypatch.setenv("AUDIO_PIECE_SECONDS", "60")


def silent_flac(path: Path, hours: float) -> Path:
    """Digital silence as FLAC: hours of audio in a few MB, written in seconds."""
    minute = np.zeros((1, 16000 * 60), np.int16)
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=16000)
        stream.layout = "mono"
        for _ in range(round(hours * 60)):
            frame = av.AudioFrame.from_ndarray(minute, format="s16", layout="mono")
            frame.sample_rate = 16000
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def progress_while_processing(client, task_id: str, above: float = 0) -> tuple | None:
    """(when, progress) once the running task has stored more than `above` percent."""
    body = result(client, task_id)
    if body["status"] == "processing" and body["progress"] > above:
        return time.monotonic(), body["progress"]
    return None


def test_cancel_of_a_long_silent_recording_stops_it_within_seconds(
    minute_pieces, client, live_worker, settings, tmp_path
):
    """Silence yields no segments, yet the run stores progress and notices a cancel between
    the windows its speech gate skips (a 5-hour silent file once kept its worker busy 275 s
    after the cancel, at progress 0)."""
    silent_id = submit(client, silent_flac(tmp_path / "silence.flac", hours=3)).json()["task_id"]
    next_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    first, first_percent = wait_for(
        lambda: progress_while_processing(client, silent_id), 60, "progress in the silence"
    )
    later, percent = wait_for(
        lambda: progress_while_processing(client, silent_id, first_percent + 5), 60, "more"
    )
    # At the pace seen so far, the rest of the silence would take this long to skip:
    rest_seconds = (100 - percent) * (later - first) / (percent - first_percent)

    canceled = time.monotonic()
    assert client.post(f"/api/v1/asr/cancel/{silent_id}").status_code == 200
    wait_for(lambda: result(client, next_id)["status"] == "done", timeout=60, message="next")
    took = time.monotonic() - canceled
    assert took < rest_seconds / 2, (took, rest_seconds)  # the silence was left, not finished
    assert result(client, silent_id)["status"] == "canceled"
    assert task_row(settings, silent_id).progress < 50  # it went no further


def test_delete_of_a_processing_task_leaves_no_row_file_or_job(
    client, live_worker, redis, settings, long_wav
):
    task_id = submit(client, long_wav).json()["task_id"]
    recording = settings.recordings_path / stored_key(settings, task_id)
    wait_until_transcribing(client, task_id)

    response = client.delete(f"/api/v1/asr/task/{task_id}")
    assert response.status_code == 204

    assert client.get(f"/api/v1/asr/result/{task_id}").status_code == 404
    assert not recording.exists()
    with session_scope(settings.DATABASE_URL) as session:
        assert session.get(Task, uuid.UUID(task_id)) is None
    wait_for(lambda: not redis_mentions(redis, task_id), timeout=15,
             message="Redis to forget the task")  # fmt: skip
    assert [w.state for w in live_workers(redis)] == ["idle"]
    assert client.delete(f"/api/v1/asr/task/{task_id}").status_code == 404


def test_delete_of_a_done_task_removes_everything(client, run_worker, redis, settings):
    task_id = submit(client, audio_file("hotwords.mp3")).json()["task_id"]
    run_worker()
    recording = settings.recordings_path / stored_key(settings, task_id)
    assert recording.exists() and redis_mentions(redis, task_id)

    assert client.delete(f"/api/v1/asr/task/{task_id}").status_code == 204
    assert not recording.exists()
    assert redis_mentions(redis, task_id) == []
    assert client.get(f"/api/v1/asr/audio/{task_id}").status_code == 404
