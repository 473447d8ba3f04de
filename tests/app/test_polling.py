"""Polling less: ETags on results, and a Retry-After on unfinished ones that follows the
estimated wait."""

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient
from redis import Redis

from app.config import Settings
from jobs.queues import WorkerInfo, write_worker_heartbeat
from models import Task, TaskStatus
from models.db import session_scope
from tests.utils.api import submitted
from tests.utils.audio import audio_file

JFK = audio_file("jfk.flac")


def result_url(task_id: str) -> str:
    return f"/api/v1/asr/result/{task_id}"


def a_worker_is_alive(redis: Redis, settings: Settings) -> None:
    """The heartbeat a worker writes (what the API reads to count workers)."""
    info = WorkerInfo(
        name="host.1", queues=[settings.QUEUE_NAME], model="tiny.en", device="cpu",
        compute_type="int8", state="idle", current_task=None, load=0.0, rss_mb=0.0, pid=1,
        hostname="host", started_at="", last_seen="",
    )  # fmt: skip
    write_worker_heartbeat(redis, info, ttl_seconds=60)


def test_an_unchanged_result_is_a_bodiless_304_and_a_changed_one_is_sent(
    client: TestClient, run_worker: Callable[[], None]
):
    task_id = submitted(client, JFK)
    queued = client.get(result_url(task_id))
    etag = queued.headers["etag"]
    assert queued.status_code == 200 and queued.json()["status"] == "queued"

    again = client.get(result_url(task_id), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = client.get(result_url(task_id), headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.json() == queued.json()

    run_worker()
    done = client.get(result_url(task_id), headers={"If-None-Match": etag})
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert done.headers["etag"] != etag and "retry-after" not in done.headers
    unchanged = client.get(result_url(task_id), headers={"If-None-Match": done.headers["etag"]})
    assert unchanged.status_code == 304


def test_retry_after_follows_the_estimated_wait(
    client: TestClient, settings: Settings, redis: Redis
):
    lonely = submitted(client, JFK)
    assert client.get(result_url(lonely)).headers["retry-after"] == "30"  # no worker at all

    a_worker_is_alive(redis, settings)
    client.app.state.poll_hints.refreshed_at = float("-inf")  # type: ignore[attr-defined]
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, uuid.UUID(lonely))
        # 100 s of audio, half done; no task finished yet, so the real-time factor is the
        # default 0.3: 100 * 0.5 * 0.3 = 15 s to go.
        task.status, task.duration_seconds, task.progress = TaskStatus.PROCESSING, 100.0, 50
    assert client.get(result_url(lonely)).headers["retry-after"] == "15"
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, uuid.UUID(lonely))
        task.status, task.duration_seconds = TaskStatus.QUEUED, 2.0  # first in line: 0.6 s
    assert client.get(result_url(lonely)).headers["retry-after"] == "1"
