"""The short-recording lane: recordings of at most SHORT_MAX_SECONDS are taken first, and a
`--lane short` worker takes nothing else."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from redis import Redis

from app.config import Settings, get_settings
from jobs.queues import model_queue, short_lane
from jobs.upkeep.reconciler import reconcile
from tests.utils.api import result, submitted
from tests.utils.audio import audio_file, write_wav
from tests.utils.records import task_row
from tests.utils.redis_db import clear_db

JFK = audio_file("jfk.flac")  # 11 s: a voice note


@pytest.fixture
def long_file(tmp_path: Path) -> Path:
    """40 s (quiet, so cheap to transcribe): longer than SHORT_MAX_SECONDS."""
    path = tmp_path / "long.wav"
    write_wav(path, np.zeros(40 * 16000, dtype=np.float32))
    return path


def waiting_in(redis: Redis, settings: Settings, lane: bool) -> list[str]:
    queue = model_queue(redis, settings, settings.WHISPER_MODEL)
    return (short_lane(queue) if lane else queue).get_job_ids()


def test_a_voice_note_submitted_after_a_long_file_is_taken_first(
    client: TestClient, settings: Settings, redis: Redis, long_file: Path,
    run_worker: Callable[[], None],
):  # fmt: skip
    long_id = submitted(client, long_file)
    note_id = submitted(client, JFK)
    assert waiting_in(redis, settings, lane=True) == [note_id]
    assert waiting_in(redis, settings, lane=False) == [long_id]
    assert (result(client, note_id)["position"], result(client, long_id)["position"]) == (1, 2)

    run_worker()

    note, long = task_row(settings, note_id), task_row(settings, long_id)
    assert note.status == long.status == "done"
    assert note.started_at < long.started_at


def test_a_short_lane_worker_leaves_long_files_queued(
    client: TestClient, settings: Settings, long_file: Path, monkeypatch: pytest.MonkeyPatch,
    run_worker: Callable[[], None],
):  # fmt: skip
    long_id = submitted(client, long_file)
    note_id = submitted(client, JFK)
    monkeypatch.setenv("WORKER_LANE", "short")

    run_worker()

    assert result(client, note_id)["status"] == "done"
    assert result(client, long_id)["status"] == "queued"
    assert result(client, long_id)["position"] == 1


def test_without_a_lane_every_task_waits_its_turn(
    client: TestClient, settings: Settings, redis: Redis, long_file: Path,
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    monkeypatch.setenv("SHORT_MAX_SECONDS", "0")
    get_settings.cache_clear()
    with TestClient(client.app) as plain:
        plain.app.state.settings = get_settings()  # type: ignore[attr-defined]
        long_id = submitted(plain, long_file)
        note_id = submitted(plain, JFK)
    assert waiting_in(redis, settings, lane=False) == [long_id, note_id]
    assert waiting_in(redis, settings, lane=True) == []


def test_the_reconciler_puts_a_lost_voice_note_back_in_its_lane(
    client: TestClient, settings: Settings, redis: Redis, long_file: Path
):
    long_id = submitted(client, long_file)
    note_id = submitted(client, JFK)
    clear_db(redis)  # Redis restarted empty

    assert sorted(map(str, reconcile().requeued)) == sorted([long_id, note_id])
    assert waiting_in(redis, settings, lane=True) == [note_id]
    assert waiting_in(redis, settings, lane=False) == [long_id]
