"""The reconciler on real rows and a real queue."""

import json
import subprocess
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from rq import Queue

from jobs.queues import (
    WORKER_SEEN_PREFIX,
    WORKER_SEEN_TTL_SECONDS,
    WorkerInfo,
    enqueue_transcription,
    queue_position,
    write_worker_heartbeat,
)
from jobs.upkeep.liveness import TAKEN_BACK_KEY, process_identity
from jobs.upkeep.reconciler import reconcile
from models import Task
from models.db import session_scope
from tests.utils.records import make_task

ELSEWHERE = "another-boot/1/42/1"  # a process on another machine: it cannot be looked at


def lost_run(settings, attempts: int, worker: str = "host.gone") -> uuid.UUID:
    task_id = make_task(settings, "processing", timedelta(minutes=5))
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, task_id)
        task.attempts, task.worker_name = attempts, worker
        task.started_at = datetime.now(UTC) - timedelta(minutes=4)
    return task_id


def worker_info(name: str, **fields) -> WorkerInfo:
    defaults = dict(
        queues=["transcription"], model="tiny.en", device="cpu", compute_type="int8",
        state="busy", current_task=None, load=0.0, rss_mb=0.0, pid=1, hostname="host",
        started_at="first", last_seen="",
    )  # fmt: skip
    return WorkerInfo(name=name, **{**defaults, **fields})


def said_last(redis, info: WorkerInfo, seconds_ago: float) -> None:
    """What a worker whose heartbeat has lapsed said last, `seconds_ago`."""
    ttl_ms = int((WORKER_SEEN_TTL_SECONDS - seconds_ago) * 1000)
    redis.set(WORKER_SEEN_PREFIX + info.name, json.dumps(asdict(info)), px=ttl_ms)


def attempts(settings, task_id: uuid.UUID) -> int:
    with session_scope(settings.DATABASE_URL) as session:
        return session.get(Task, task_id).attempts


def test_a_lost_run_is_queued_again_until_max_attempts_then_fails(settings, redis):
    retried = lost_run(settings, attempts=1)
    exhausted = lost_run(settings, attempts=settings.MAX_ATTEMPTS)

    report = reconcile(settings, redis)

    assert report.recovered == [retried] and report.failed == [exhausted]
    queue = Queue(settings.QUEUE_NAME, connection=redis)
    assert queue_position(queue, retried) == 1
    with session_scope(settings.DATABASE_URL) as session:
        assert session.get(Task, retried).status == "queued"
        failed = session.get(Task, exhausted)
        assert failed.status == "failed"
        assert failed.error == f"worker died {settings.MAX_ATTEMPTS} times while processing"
    history = (settings.logs_path / "asr_history.jsonl").read_text()
    assert str(exhausted) in history and str(retried) not in history


def test_queued_tasks_without_a_job_get_one_and_others_are_left_alone(settings, redis):
    orphan = make_task(settings, "queued", timedelta(minutes=5))
    waiting = make_task(settings, "queued", timedelta(minutes=5))
    queue = Queue(settings.QUEUE_NAME, connection=redis)
    enqueue_transcription(queue, waiting, settings)

    report = reconcile(settings, redis)

    assert report.requeued == [orphan]
    assert queue.count == 2
    assert reconcile(settings, redis).requeued == []  # idempotent


def test_young_tasks_are_left_to_the_api(settings, redis):
    make_task(settings, "queued", timedelta(seconds=1))
    strict = settings.model_copy(update={"RECONCILE_GRACE_SECONDS": 60})
    assert reconcile(strict, redis).requeued == []


def test_the_current_task_of_a_live_worker_is_left_alone(settings, redis):
    running = lost_run(settings, attempts=1)
    info = WorkerInfo(
        name="host.alive", queues=[settings.QUEUE_NAME], model="tiny.en", device="cpu",
        compute_type="int8", state="busy", current_task=str(running), load=0.0, rss_mb=0.0,
        pid=1, hostname="host", started_at="", last_seen="",
    )  # fmt: skip
    write_worker_heartbeat(redis, info, ttl_seconds=30)

    report = reconcile(settings, redis)

    assert report.recovered == [] and report.failed == []
    with session_scope(settings.DATABASE_URL) as session:
        assert session.get(Task, running).status == "processing"


def test_a_silent_worker_elsewhere_keeps_its_run_until_it_missed_the_grace(settings, redis):
    beat = settings.WORKER_HEARTBEAT_TTL_SECONDS / 3
    grace = settings.WORKER_LOST_AFTER_MISSED_BEATS * beat
    starved = lost_run(settings, attempts=1, worker="far.starved")
    said_last(redis, worker_info("far.starved", process=ELSEWHERE), seconds_ago=grace - beat)
    silent = lost_run(settings, attempts=1, worker="far.silent")
    said_last(redis, worker_info("far.silent", process=ELSEWHERE), seconds_ago=grace + beat)

    report = reconcile(settings, redis)

    assert report.suspect == [starved] and report.recovered == [silent]


def test_the_run_of_a_worker_whose_process_ended_is_lost_at_once(settings, redis):
    process = subprocess.Popen(["sleep", "60"])
    identity = process_identity(process.pid)
    process.kill()
    process.wait()
    ended = lost_run(settings, attempts=1, worker="here.ended")
    said_last(redis, worker_info("here.ended", pid=process.pid, process=identity), seconds_ago=7)

    assert identity is not None and process_identity(process.pid) is None
    assert reconcile(settings, redis).recovered == [ended]


def test_the_run_of_a_live_worker_that_moved_on_is_lost_and_stays_charged(settings, redis):
    abandoned = lost_run(settings, attempts=1, worker="host.alive")
    alive = worker_info("host.alive", process=ELSEWHERE)
    write_worker_heartbeat(redis, alive, ttl_seconds=30)

    assert reconcile(settings, redis).recovered == [abandoned]
    write_worker_heartbeat(redis, alive, ttl_seconds=30)  # it goes on beating
    assert reconcile(settings, redis).refunded == []  # it was never taken for dead
    assert attempts(settings, abandoned) == 1


def test_a_run_taken_back_is_refunded_once_when_the_same_worker_beats_again(settings, redis):
    grace = settings.WORKER_LOST_AFTER_MISSED_BEATS * settings.WORKER_HEARTBEAT_TTL_SECONDS / 3
    task_id = lost_run(settings, attempts=2, worker="far.starved")
    starved = worker_info("far.starved", process=ELSEWHERE, started_at="first")
    said_last(redis, starved, seconds_ago=grace + 1)
    assert reconcile(settings, redis).recovered == [task_id]

    assert reconcile(settings, redis).refunded == []  # not a beat since
    # Another process under the same name (a restart) proves nothing about the first.
    restarted = worker_info("far.starved", process=ELSEWHERE, started_at="second")
    write_worker_heartbeat(redis, restarted, ttl_seconds=30)
    assert reconcile(settings, redis).refunded == []
    write_worker_heartbeat(redis, starved, ttl_seconds=30)
    assert reconcile(settings, redis).refunded == [task_id]
    assert reconcile(settings, redis).refunded == []
    assert attempts(settings, task_id) == 1


def test_a_deleted_task_leaves_no_record_of_its_taken_back_run(settings, redis):
    grace = settings.WORKER_LOST_AFTER_MISSED_BEATS * settings.WORKER_HEARTBEAT_TTL_SECONDS / 3
    task_id = lost_run(settings, attempts=1, worker="far.starved")
    said_last(redis, worker_info("far.starved", process=ELSEWHERE), seconds_ago=grace + 1)
    assert reconcile(settings, redis).recovered == [task_id]
    assert str(task_id) in str(redis.hgetall(TAKEN_BACK_KEY))

    with session_scope(settings.DATABASE_URL) as session:
        session.delete(session.get(Task, task_id))
    reconcile(settings, redis)

    assert redis.hgetall(TAKEN_BACK_KEY) == {}
