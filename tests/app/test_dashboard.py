"""rq-dashboard at /rq: refused without credentials, and with them it lists the queue."""

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.config import Settings
from app.main import create_app
from tests.utils.api import basic, bearer, submit
from tests.utils.audio import audio_file


@pytest.fixture
def dashboard_client(settings: Settings):
    secured = settings.model_copy(update={
        "RQ_DASHBOARD_USERNAME": "ops", "RQ_DASHBOARD_PASSWORD": SecretStr("s3cret")})  # fmt: skip
    with TestClient(create_app(secured)) as client:
        yield client


def test_dashboard_refuses_without_or_with_wrong_credentials(dashboard_client):
    for headers in ({}, basic("ops", "wrong"), basic("root", "s3cret")):
        response = dashboard_client.get("/rq/", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")
    assert dashboard_client.get("/rq/0/data/queues.json").status_code == 401


def test_dashboard_lists_the_queue_with_a_queued_job(dashboard_client):
    task_id = submit(dashboard_client, audio_file("jfk.flac")).json()["task_id"]
    auth = basic("ops", "s3cret")

    page = dashboard_client.get("/rq/", headers=auth)
    assert page.status_code == 200 and "/rq/static/" in page.text
    queues = dashboard_client.get("/rq/0/data/queues.json", headers=auth).json()["queues"]
    # jfk.flac (11 s) waits in the short lane of the default model's queue.
    [transcription] = [q for q in queues if q["name"] == "transcription:short"]
    assert transcription["count"] == 1
    jobs = dashboard_client.get(
        "/rq/0/data/jobs/transcription:short/queued/8/asc/1.json", headers=auth
    ).json()["jobs"]
    assert [job["id"] for job in jobs] == [task_id]


def test_dashboard_is_never_open_without_configured_credentials(client):
    response = client.get("/rq/")
    assert response.status_code == 503
    assert "RQ_DASHBOARD_USERNAME" in response.json()["detail"]


def test_the_dashboards_mutating_routes_refuse_without_credentials(dashboard_client, redis):
    """Delete, requeue and empty change the queue: without the credentials they are refused
    and the queue is left as it was; with them they do what they say."""
    from rq import Queue

    task_id = submit(dashboard_client, audio_file("jfk.flac")).json()["task_id"]
    queue = Queue("transcription:short", connection=redis)  # jfk.flac's lane
    mutations = [
        ("POST", f"/rq/job/{task_id}/delete"),
        ("POST", f"/rq/job/{task_id}/requeue"),
        ("GET", "/rq/requeue/transcription:short"),
        ("POST", "/rq/requeue/transcription:short"),
        ("POST", "/rq/queue/transcription:short/queued/empty"),
        ("POST", "/rq/queue/transcription:short/compact"),
    ]
    for method, path in mutations:
        for headers in ({}, basic("ops", "wrong")):
            response = dashboard_client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
    assert queue.job_ids == [task_id]

    emptied = dashboard_client.post("/rq/queue/transcription:short/queued/empty",
                                    headers=basic("ops", "s3cret"))  # fmt: skip
    assert emptied.status_code == 200
    assert queue.job_ids == []


@pytest.mark.parametrize(
    ("down", "headers", "dependency"),
    [
        # An API key is looked up in Postgres; the queues are read from Redis.
        ({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/asr"},
         bearer("asr_some-key"), "database"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, basic("ops", "s3cret"), "redis"),
    ],
)  # fmt: skip
def test_dashboard_while_a_dependency_is_down_is_503_naming_it(settings, down, headers, dependency):
    dashboard = {"RQ_DASHBOARD_USERNAME": "ops", "RQ_DASHBOARD_PASSWORD": SecretStr("s3cret")}
    broken = settings.model_copy(update={"AUTH_ENABLED": True, **dashboard, **down})
    with TestClient(create_app(broken)) as client:
        response = client.get("/rq/0/data/queues.json", headers=headers)
    assert response.status_code == 503, response.text[:300]
    assert response.json() == {"error": "service unavailable",
                               "detail": f"the {dependency} is unavailable; retry shortly",
                               "dependency": dependency}  # fmt: skip
