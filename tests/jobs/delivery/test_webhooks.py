"""Signed webhooks end to end: a real worker, a real maintenance worker (with RQ's scheduler,
for the retries) and a receiver on 127.0.0.1 recording what arrives."""

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from rq.job import Job, JobStatus

from app.main import create_app
from jobs.queues import delivery_job_id
from jobs.transcription.outcome import finish_failed
from jobs.upkeep.reconciler import reconcile
from models import Task, TaskStatus
from models.db import session_scope
from tests.utils.api import result, submit
from tests.utils.audio import JFK_LINE, audio_file, normalize
from tests.utils.records import add_task_row
from tests.utils.redis_db import clear_db
from tests.utils.waiting import wait_for
from tests.utils.webhook_receiver import CALLBACK_SECRET, Receiver, verify, webhook_receiver
from tests.utils.workers import run_maintenance_until, run_maintenance_until_idle

CHAT = {"chat_id": 7, "message_id": 9}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as state:
        yield state


@pytest.fixture
def hook_client(settings, monkeypatch) -> Iterator[TestClient]:
    """An API and worker environment that allow a loopback receiver and retry quickly."""
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("WEBHOOK_RETRY_DELAYS", "1,1,1")
    overrides = {"WEBHOOK_ALLOW_PRIVATE": True, "WEBHOOK_RETRY_DELAYS": "1,1,1"}
    with TestClient(create_app(settings.model_copy(update=overrides))) as client:
        yield client


def test_a_done_task_posts_a_signed_webhook(hook_client, run_worker, receiver):
    response = submit(hook_client, audio_file("jfk.flac"), callback_url=receiver.url,
                      callback_secret=CALLBACK_SECRET, metadata=json.dumps(CHAT))  # fmt: skip
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    assert result(hook_client, task_id)["webhook"] == {
        "attempts": 0,
        "last_status": None,
        "delivered_at": None,
    }

    run_worker()
    run_maintenance_until(lambda: receiver.requests)

    [(headers, body)] = receiver.requests
    assert verify(CALLBACK_SECRET, headers, body)
    assert not verify("another secret", headers, body)
    payload = json.loads(body)
    assert payload["task_id"] == task_id and payload["status"] == "done"
    assert JFK_LINE in normalize(payload["text"])
    assert payload["metadata"] == CHAT and payload["language"] == "en"
    assert payload["links"] == {
        "result": f"/api/v1/asr/result/{task_id}",
        "audio": f"/api/v1/asr/audio/{task_id}",
    }
    shown = result(hook_client, task_id)
    assert shown["webhook"]["attempts"] == 1 and shown["webhook"]["last_status"] == "200"
    assert CALLBACK_SECRET not in json.dumps(shown)


def test_a_failing_receiver_gets_the_webhook_on_the_fourth_attempt(hook_client, settings, receiver):
    receiver.answers = [500, 500, 500]
    task_id = processing_task(settings, receiver.url)
    finish_failed(settings, task_id, "could not decode audio: test")

    run_maintenance_until_idle()

    assert len(receiver.requests) == 4
    assert all(verify(CALLBACK_SECRET, headers, body) for headers, body in receiver.requests)
    assert json.loads(receiver.requests[-1][1])["error"] == "could not decode audio: test"
    webhook = wait_for(lambda: delivered(hook_client, str(task_id)), 10, "delivered_at")
    assert webhook["attempts"] == 4 and webhook["last_status"] == "200"


def test_a_receiver_that_keeps_failing_is_given_up_after_the_last_retry(
    hook_client, settings, receiver
):
    """WEBHOOK_RETRY_DELAYS=1,1,1: the first attempt and three retries, then no more."""
    receiver.answers = [500] * 10
    task_id = processing_task(settings, receiver.url)
    finish_failed(settings, task_id, "could not decode audio: test")

    run_maintenance_until_idle()

    assert len(receiver.requests) == 4
    webhook = result(hook_client, str(task_id))["webhook"]
    assert webhook == {"attempts": 4, "last_status": "500", "delivered_at": None}


def test_a_canceled_task_posts_its_webhook(hook_client, receiver):
    response = submit(hook_client, audio_file("jfk.flac"), callback_url=receiver.url,
                      callback_secret=CALLBACK_SECRET)  # fmt: skip
    task_id = response.json()["task_id"]
    assert hook_client.post(f"/api/v1/asr/cancel/{task_id}").status_code == 200

    run_maintenance_until(lambda: receiver.requests)

    [(headers, body)] = receiver.requests
    assert verify(CALLBACK_SECRET, headers, body) and json.loads(body)["status"] == "canceled"


def test_a_retried_task_delivers_its_webhook_again(hook_client, run_worker, receiver):
    response = submit(hook_client, audio_file("jfk.flac"), callback_url=receiver.url,
                      callback_secret=CALLBACK_SECRET)  # fmt: skip
    task_id = response.json()["task_id"]
    hook_client.post(f"/api/v1/asr/cancel/{task_id}")
    run_maintenance_until(lambda: receiver.requests)
    wait_for(lambda: delivered(hook_client, task_id), 10, "delivered_at")

    assert hook_client.post(f"/api/v1/asr/retry/{task_id}").status_code == 202
    webhook = result(hook_client, task_id)["webhook"]
    assert (webhook["attempts"], webhook["last_status"], webhook["delivered_at"]) == (0, None, None)
    run_worker()
    run_maintenance_until(lambda: len(receiver.requests) == 2)

    assert [json.loads(body)["status"] for _, body in receiver.requests] == ["canceled", "done"]
    webhook = wait_for(lambda: delivered(hook_client, task_id), 10, "delivered_at")
    assert webhook["attempts"] == 1


def test_a_webhook_lost_with_redis_is_delivered_once_by_the_reconciler(
    hook_client, settings, redis, receiver
):
    task_id = processing_task(settings, receiver.url)
    finish_failed(settings, task_id, "could not decode audio: test")  # queues the delivery
    clear_db(redis)  # Redis restarted empty

    assert reconcile(settings, redis).redelivered == [task_id]
    assert reconcile(settings, redis).redelivered == []  # its job exists now
    run_maintenance_until_idle()

    assert len(receiver.requests) == 1
    webhook = wait_for(lambda: delivered(hook_client, str(task_id)), 10, "delivered_at")
    assert webhook["attempts"] == 1


def test_a_lost_retry_is_queued_again_and_a_scheduled_one_is_left_alone(
    hook_client, settings, redis, receiver
):
    receiver.answers = [500]
    task_id = processing_task(settings, receiver.url)
    finish_failed(settings, task_id, "could not decode audio: test")
    run_maintenance_until(lambda: receiver.requests)  # attempt 1 failed, attempt 2 scheduled

    assert reconcile(settings, redis).redelivered == []
    clear_db(redis)
    assert reconcile(settings, redis).redelivered == [task_id]
    run_maintenance_until_idle()

    assert len(receiver.requests) == 2
    webhook = wait_for(lambda: delivered(hook_client, str(task_id)), 10, "delivered_at")
    assert webhook["attempts"] == 2


def test_an_attempt_still_running_is_not_doubled_by_the_reconciler(
    hook_client, settings, redis, receiver
):
    """Attempt 1 is being sent (its job started, the attempt counted): the reconciler must
    not queue attempt 2 beside it, or the receiver could get the webhook twice."""
    task_id = processing_task(settings, receiver.url)
    finish_failed(settings, task_id, "could not decode audio: test")  # queues attempt 1
    with session_scope(settings.DATABASE_URL) as session:
        session.get(Task, task_id).webhook_attempts = 1  # type: ignore[union-attr]
    running = Job.fetch(delivery_job_id("webhook", task_id, 1), connection=redis)
    running.set_status(JobStatus.STARTED)

    assert reconcile(settings, redis).redelivered == []
    assert not Job.exists(delivery_job_id("webhook", task_id, 2), connection=redis)


def test_a_webhook_given_up_or_delivered_is_not_queued_again(hook_client, settings, redis):
    given_up = processing_task(settings, "http://127.0.0.1:9/hook")
    finish_failed(settings, given_up, "could not decode audio: test")
    delivered_already = processing_task(settings, "http://127.0.0.1:9/hook")
    finish_failed(settings, delivered_already, "could not decode audio: test")
    with session_scope(settings.DATABASE_URL) as session:
        session.get(Task, given_up).webhook_attempts = len(settings.webhook_retry_delays) + 1
        session.get(Task, delivered_already).webhook_delivered_at = datetime.now(UTC)
    clear_db(redis)

    assert reconcile(settings, redis).redelivered == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/hook", "private"),
        ("http://localhost:9/hook", "loopback"),
    ],
)
def test_callbacks_to_internal_addresses_are_refused(client, url, kind):
    response = submit(
        client, audio_file("jfk.flac"), callback_url=url, callback_secret=CALLBACK_SECRET
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "callback_url"] and f"a {kind} address" in error["msg"]


def test_a_callback_without_any_secret_is_refused(hook_client, receiver):
    response = submit(hook_client, audio_file("jfk.flac"), callback_url=receiver.url)
    assert response.status_code == 422, response.text
    assert "needs a secret" in response.json()["detail"][0]["msg"]


def processing_task(settings, callback_url: str) -> uuid.UUID:
    return add_task_row(
        settings,
        status=TaskStatus.PROCESSING,
        attempts=1,
        callback_url=callback_url,
        callback_secret=CALLBACK_SECRET,
    ).id


def delivered(client: TestClient, task_id: str) -> dict | None:
    webhook = result(client, task_id)["webhook"]
    return webhook if webhook["delivered_at"] else None
