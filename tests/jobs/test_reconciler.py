"""The reconciler on real rows and a real queue."""

import uuid
from datetime import UTC, datetime, timedelta

from rq import Queue

from jobs.queues import WorkerInfo, enqueue_transcription, queue_position, write_worker_heartbeat
from jobs.reconciler import reconcile
from models import Task
from models.db import session_scope
from tests.utils.records import make_task


def lost_run(settings, attempts: int) -> uuid.UUID:
    task_id = make_task(settings, "processing", timedelta(minutes=5))
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, task_id)
        task.attempts, task.worker_name = attempts, "host.gone"
        task.started_at = datetime.now(UTC) - timedelta(minutes=4)
    return task_id


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
