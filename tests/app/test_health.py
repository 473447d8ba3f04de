"""/health: ready only when Redis, Postgres and at least one worker answer."""

from fastapi.testclient import TestClient
from redis import Redis

from app.config import Settings
from app.main import create_app
from app.routes import health as health_route
from jobs.queues import live_workers
from tests.utils.api import submit
from tests.utils.audio import audio_file
from tests.utils.processes import stop
from tests.utils.waiting import wait_for


def test_health_is_503_without_a_worker(client):
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["redis"] == "ok" and body["database"] == "ok"
    assert body["workers_active"] == 0
    assert any("no worker alive" in reason for reason in body["reasons"])


def test_health_is_200_with_a_live_worker_and_503_after_it_stops(
    client, worker_process, redis: Redis
):
    response = client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["reasons"] == []
    assert body["model"] == "tiny.en" and body["workers_active"] == 1
    [worker] = body["workers"]
    assert worker["model"] == "tiny.en" and worker["device"] == "cpu"
    assert worker["state"] == "idle"
    assert body["uptime"] >= 0
    assert client.get("/api/v1/health").status_code == 200

    stop(worker_process)
    wait_for(lambda: not live_workers(redis), timeout=10, message="heartbeat removal")
    # Worked out at most once a second: the answer follows within that.
    wait_for(lambda: client.get("/health").status_code == 503, timeout=5, message="503")


def test_health_is_worked_out_at_most_once_a_second(client, monkeypatch):
    checks = []
    real_check = health_route.check_health
    monkeypatch.setattr(health_route, "check_health",
                        lambda *args: checks.append(1) or real_check(*args))  # fmt: skip
    answers = [client.get("/health") for _ in range(5)]
    assert len(checks) == 1 and len({a.content for a in answers}) == 1
    client.app.state.health.made_at -= health_route.HEALTH_CACHE_SECONDS  # a second later
    client.get("/health")
    assert len(checks) == 2


def test_health_names_redis_when_it_is_down(settings: Settings):
    down = settings.model_copy(update={"REDIS_URL": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(down)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"].startswith("unavailable") and body["database"] == "ok"


def test_health_names_the_database_when_it_is_down(settings: Settings):
    down = settings.model_copy(
        update={"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/asr"}
    )
    with TestClient(create_app(down)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["database"].startswith("unavailable") and body["redis"] == "ok"


def test_a_queued_task_gets_a_wait_estimate_while_a_worker_is_alive(client, live_worker):
    """With a worker alive, submit answers with a number, not null: nothing is ahead of the
    first task, so it waits for nothing."""
    response = submit(client, audio_file("jfk.flac"))
    assert response.status_code == 202
    assert response.json()["estimated_wait"] == 0.0
