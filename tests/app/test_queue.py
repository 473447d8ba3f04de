"""Queue positions, queue status, stats, and submit while no worker runs."""

import statistics

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.main import create_app
from models import Task
from models.db import session_scope
from tests.utils.api import result, submit
from tests.utils.audio import audio_file
from tests.utils.records import assert_nothing_stored


def test_three_queued_tasks_report_positions_1_2_3(client):
    answers = [submit(client, audio_file("hotwords.mp3")).json() for _ in range(3)]
    assert [a["position"] for a in answers] == [1, 2, 3]
    assert [result(client, a["task_id"])["position"] for a in answers] == [1, 2, 3]
    assert all(a["warning"] == "no worker is running; the task waits until one starts"
               for a in answers)  # fmt: skip
    status = client.get("/api/v1/asr/queue/status").json()
    assert status == {"queued": 3, "processing": 0, "failed": 0, "workers": 0,
                      "workers_busy": 0, "estimated_wait": None}  # fmt: skip

    client.post(f"/api/v1/asr/cancel/{answers[0]['task_id']}")
    assert [result(client, a["task_id"])["position"] for a in answers[1:]] == [1, 2]


def test_queue_status_and_estimates_with_a_live_worker(client, live_worker):
    status = client.get("/api/v1/asr/queue/status").json()
    assert status["workers"] == 1 and status["workers_busy"] == 0
    assert status["estimated_wait"] == 0.0  # nothing ahead
    answer = submit(client, audio_file("jfk.flac")).json()
    assert answer["warning"] is None and answer["estimated_wait"] == 0.0


def test_stats_match_the_rows(client, run_worker, settings: Settings):
    for name in ("jfk.flac", "hotwords.mp3", "jfk.flac"):
        submit(client, audio_file(name))
    canceled = submit(client, audio_file("hotwords.mp3")).json()["task_id"]
    client.post(f"/api/v1/asr/cancel/{canceled}")
    run_worker()
    submit(client, audio_file("hotwords.mp3"))  # stays queued

    stats = client.get("/api/v1/stats").json()
    with session_scope(settings.DATABASE_URL) as session:
        rows = session.scalars(select(Task)).all()
        done = [t for t in rows if t.status == "done"]
        rtfs = [t.rtf for t in done]
        waits = [(t.started_at - t.created_at).total_seconds() for t in rows if t.started_at]
        audio_hours = sum(t.duration_seconds for t in done) / 3600
    assert stats["tasks"] == {"queued": 1, "processing": 0, "done": 3, "failed": 0,
                              "canceled": 1, "total": 5}  # fmt: skip
    assert stats["audio_hours_transcribed"] == pytest.approx(audio_hours, abs=1e-4)
    assert stats["audio_hours_transcribed"] == pytest.approx((11 + 4 + 11) / 3600, abs=1e-3)
    assert stats["rtf"]["mean"] == pytest.approx(statistics.mean(rtfs), abs=1e-4)
    assert stats["rtf"]["median"] == pytest.approx(statistics.median(rtfs), abs=1e-4)
    assert stats["mean_queue_wait_seconds"] == pytest.approx(statistics.mean(waits), abs=1e-3)
    assert stats["uptime"] >= 0 and stats["workers"] == []


def test_stats_list_each_workers_model_device_and_state(client, live_worker):
    [worker] = client.get("/api/v1/stats").json()["workers"]
    assert worker["model"] == "tiny.en" and worker["device"] == "cpu"
    assert worker["compute_type"] == "int8" and worker["state"] == "idle"
    assert worker["rss_mb"] > 50 and worker["last_seen"]


def test_reject_when_no_workers_answers_503_and_stores_nothing(settings: Settings):
    strict = settings.model_copy(update={"REJECT_WHEN_NO_WORKERS": True})
    with TestClient(create_app(strict)) as client:
        response = submit(client, audio_file("jfk.flac"))
    assert response.status_code == 503
    assert "no worker is running" in response.json()["detail"]
    assert_nothing_stored(settings)


def test_reject_when_no_workers_accepts_while_a_worker_is_alive(settings: Settings, live_worker):
    strict = settings.model_copy(update={"REJECT_WHEN_NO_WORKERS": True})
    with TestClient(create_app(strict)) as client:
        response = submit(client, audio_file("jfk.flac"))
    assert response.status_code == 202 and response.json()["warning"] is None
