"""What the API does while Redis is down (an app whose REDIS_URL points at a closed port; the
run's real Redis stands for Redis once it is back): a submit that cannot be queued ends its
task like any other failure, and a DELETE deletes all the same."""

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from jobs.queues import model_queue
from jobs.upkeep.reconciler import reconcile
from tests.utils.api import submit, submitted
from tests.utils.audio import audio_file
from tests.utils.records import history_lines, stored_files, task_count
from tests.utils.webhook_receiver import CALLBACK_SECRET, verify, webhook_receiver
from tests.utils.workers import run_maintenance_until

REDIS_DOWN = "redis://127.0.0.1:1/0"


def test_a_submit_redis_refused_gets_its_history_line_and_its_webhook_once_redis_is_back(
    settings: Settings, redis, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")  # for the delivery worker
    down = settings.model_copy(update={"REDIS_URL": REDIS_DOWN, "WEBHOOK_ALLOW_PRIVATE": True})
    with webhook_receiver() as receiver:
        with TestClient(create_app(down)) as client:
            response = submit(client, audio_file("jfk.flac"), callback_url=receiver.url,
                              callback_secret=CALLBACK_SECRET)  # fmt: skip
        assert response.status_code == 503
        task_id = response.json()["task_id"]
        [line] = history_lines(settings)
        assert line["task_id"] == task_id and line["status"] == "failed"
        assert line["error"].startswith("could not be queued: Redis unavailable")

        # Redis is back: the reconciler finds the webhook owed, and it is delivered once.
        assert reconcile(settings, redis).redelivered == [uuid.UUID(task_id)]
        run_maintenance_until(lambda: receiver.requests)
    [(headers, body)] = receiver.requests
    assert verify(CALLBACK_SECRET, headers, body)
    payload = json.loads(body)
    assert payload["task_id"] == task_id and payload["status"] == "failed"
    assert payload["error"].startswith("could not be queued")


def test_a_delete_while_redis_is_down_leaves_no_row_and_no_file(
    client, run_worker, settings, redis
):
    task_id = submitted(client, audio_file("hotwords.mp3"))  # queued, with a job in Redis
    assert task_count(settings) == 1 and len(stored_files(settings)) == 1

    down = settings.model_copy(update={"REDIS_URL": REDIS_DOWN})
    with TestClient(create_app(down)) as broken:
        response = broken.delete(f"/api/v1/asr/task/{task_id}")
    assert response.status_code == 204, response.text
    assert task_count(settings) == 0 and stored_files(settings) == []
    assert client.get(f"/api/v1/asr/result/{task_id}").status_code == 404
    # Redis is back: the job it still holds finds no row when a worker takes it, and ends.
    run_worker()
    assert model_queue(redis, settings, settings.WHISPER_MODEL).count == 0
    assert task_count(settings) == 0 and history_lines(settings) == []
