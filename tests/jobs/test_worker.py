"""A long-running worker process: progress while it transcribes, and its log files."""

import signal
import time
import uuid

import pytest

from app.config import Settings
from models import Task
from models.db import session_scope
from tests.utils.api import result, submit
from tests.utils.audio import audio_file
from tests.utils.waiting import wait_for


def test_progress_rises_while_a_long_file_is_processed(client, worker_process, settings: Settings):
    task_id = submit(client, audio_file("multilingual.mp3")).json()["task_id"]
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = result(client, task_id)
        if body["status"] == "processing":
            seen.append(body["progress"])
        elif body["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert body["status"] == "done", body
    assert any(0 < p < 100 for p in seen), seen
    assert seen == sorted(seen)
    with session_scope(settings.DATABASE_URL) as session:
        assert session.get(Task, uuid.UUID(task_id)).progress == 100  # type: ignore[union-attr]


def test_api_worker_and_error_logs_are_written(client, worker_process, settings: Settings):
    good = submit(client, audio_file("jfk.flac")).json()["task_id"]
    wait_for(lambda: result(client, good)["status"] == "done", timeout=60, message="jfk done")

    logs = settings.logs_path
    access = (logs / "access.log").read_text()
    assert '"POST /api/v1/asr/submit" 202' in access
    assert f'"GET /api/v1/asr/result/{good}" 200' in access
    assert "queued jfk.flac" in (logs / "api.log").read_text()
    worker_log = (logs / "worker.log").read_text()
    assert "model tiny.en loaded" in worker_log and f"task {good}: done" in worker_log
    assert '"POST ' not in (logs / "api.log").read_text()  # access lines have their own file

    worker_process.send_signal(signal.SIGSTOP)  # so the file is gone before the worker looks
    try:
        bad = submit(client, audio_file("hotwords.mp3")).json()["task_id"]
        for path in settings.recordings_path.glob(f"*{bad}*"):
            path.unlink()
    finally:
        worker_process.send_signal(signal.SIGCONT)
    wait_for(lambda: result(client, bad)["status"] == "failed", timeout=60, message="failure")
    error_log = wait_for(lambda: (logs / "error.log").read_text(), timeout=5, message="error.log")
    assert f"task {bad}: failed: audio file is missing from storage" in str(error_log)


@pytest.mark.slow  # a real worker process stopped, killed or starved
def test_heartbeat_disappears_within_its_ttl_after_the_worker_is_killed(
    client, worker_process, redis, settings: Settings
):
    from jobs.queues import WORKER_KEY_PREFIX, live_workers

    assert client.get("/health").status_code == 200
    [worker] = live_workers(redis)
    key = WORKER_KEY_PREFIX + worker.name
    ttl_ms = settings.WORKER_HEARTBEAT_TTL_SECONDS * 1000
    # The heartbeat is a key that expires TTL after its last refresh; it is never refreshed
    # by anything but the live process.
    assert 0 < redis.pttl(key) <= ttl_ms
    worker_process.kill()  # SIGKILL: no chance to say goodbye
    worker_process.wait()
    assert 0 < redis.pttl(key) <= ttl_ms  # still there: expiring, not removed
    wait_for(lambda: not live_workers(redis), timeout=settings.WORKER_HEARTBEAT_TTL_SECONDS * 3,
             message="the heartbeat to expire")  # fmt: skip
    assert redis.pttl(key) == -2  # gone by expiry
    assert client.get("/health").status_code == 503


def test_jobs_run_in_the_worker_process_itself(client, worker_process, settings: Settings):
    """SimpleWorker: no fork per job, so the loaded model is the one that transcribes."""
    task_id = submit(client, audio_file("hotwords.mp3")).json()["task_id"]
    wait_for(lambda: result(client, task_id)["status"] == "done", timeout=60, message="done")
    worker_log = (settings.logs_path / "worker.log").read_text()
    assert f"task {task_id}: processing hotwords.mp3 (attempt 1, pid {worker_process.pid})" in (
        worker_log
    )


@pytest.mark.slow  # a real worker process stopped, killed or starved
def test_abandoned_job_found_by_rq_is_put_back_and_then_completed(
    client, worker_process, redis, settings: Settings, tmp_path, run_worker
):
    """RQ's own abandoned-job cleanup calls our failure callback: the task does not stay
    `processing` after its worker was SIGKILLed; it is queued again and completed."""
    from rq import Queue

    from tests.utils.audio import long_recording

    task_id = submit(client, long_recording(tmp_path / "long.wav", repeats=3)).json()["task_id"]
    wait_for(lambda: result(client, task_id).get("progress"), timeout=60, message="progress")
    worker_process.kill()
    worker_process.wait()
    assert result(client, task_id)["status"] == "processing"

    # What RQ's maintenance does once the job's started-registry entry has expired.
    registry = Queue(settings.QUEUE_NAME, connection=redis).started_job_registry
    registry.cleanup(timestamp=time.time() + 10 * settings.JOB_TIMEOUT_SECONDS)
    assert result(client, task_id)["status"] == "queued"

    run_worker()  # its start-up reconcile enqueues the task again
    task = result(client, task_id)
    assert task["status"] == "done" and task["attempts"] == 2


@pytest.mark.slow  # a real worker process stopped, killed or starved
def test_a_starved_worker_keeps_its_task_and_is_not_charged(
    client, worker_process, redis, settings: Settings, tmp_path
):
    """A stopped process is a starved one: its heartbeat lapses while it transcribes. The
    reconciler finds its process alive on this machine and leaves the run alone, even with
    the grace in missed beats already over; resumed, it finishes on its first attempt."""
    from jobs.queues import live_workers
    from jobs.upkeep.reconciler import reconcile
    from tests.utils.audio import long_recording
    from tests.utils.processes import paused

    task_id = submit(client, long_recording(tmp_path / "long.wav", repeats=3)).json()["task_id"]
    wait_for(lambda: result(client, task_id).get("progress"), timeout=60, message="progress")
    with paused(worker_process):
        wait_for(lambda: not live_workers(redis), timeout=settings.WORKER_HEARTBEAT_TTL_SECONDS * 3,
                 message="the heartbeat to lapse")  # fmt: skip
        # The heartbeat expires after 3 missed beats: a grace of 3 is over already.
        impatient = settings.model_copy(update={"WORKER_LOST_AFTER_MISSED_BEATS": 3})
        report = reconcile(impatient, redis)
        assert report.recovered == [] and report.failed == []
        assert result(client, task_id)["status"] == "processing"
    wait_for(lambda: result(client, task_id)["status"] == "done", timeout=180, message="done")
    assert result(client, task_id)["attempts"] == 1
    assert worker_process.poll() is None  # the same process finished it


@pytest.mark.slow  # a real worker process stopped, killed or starved
def test_a_run_taken_from_a_starved_worker_elsewhere_is_not_charged(
    client, worker_process, redis, settings: Settings, tmp_path
):
    """On another machine a silent worker's process cannot be looked at: past the grace in
    missed beats its run is taken back. The worker was only starved: once it beats again, the
    run it was charged for is refunded, and the task ends `done` on one charged attempt."""
    import json

    from jobs.queues import WORKER_SEEN_PREFIX, live_workers
    from jobs.upkeep.reconciler import reconcile
    from tests.utils.audio import long_recording
    from tests.utils.processes import paused

    task_id = submit(client, long_recording(tmp_path / "long.wav", repeats=3)).json()["task_id"]
    wait_for(lambda: result(client, task_id).get("progress"), timeout=60, message="progress")
    [worker] = live_workers(redis)
    with paused(worker_process):
        wait_for(lambda: not live_workers(redis), timeout=settings.WORKER_HEARTBEAT_TTL_SECONDS * 3,
                 message="the heartbeat to lapse")  # fmt: skip
        seen = json.loads(redis.get(WORKER_SEEN_PREFIX + worker.name))
        seen["process"] = "another-boot/1/42/1"  # what a worker on another machine said
        redis.set(WORKER_SEEN_PREFIX + worker.name, json.dumps(seen), keepttl=True)
        impatient = settings.model_copy(update={"WORKER_LOST_AFTER_MISSED_BEATS": 3})
        assert reconcile(impatient, redis).recovered == [uuid.UUID(task_id)]
        assert result(client, task_id)["status"] == "queued"
    wait_for(lambda: result(client, task_id)["status"] == "done", timeout=180, message="done")
    report = reconcile(settings, redis)  # the next scheduled pass: the worker has beaten since
    assert report.refunded == [uuid.UUID(task_id)]
    assert result(client, task_id)["attempts"] == 1
    assert reconcile(settings, redis).refunded == []  # refunded once
    assert result(client, task_id)["attempts"] == 1
