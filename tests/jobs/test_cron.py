"""The scheduler enqueues the sweep and the reconcile onto the maintenance queue; the
maintenance worker runs them, and each does its work."""

from datetime import UTC, datetime, timedelta

from rq import Queue

from jobs.cron import build_scheduler
from jobs.maintenance import MAINTENANCE_QUEUE
from jobs.queues import queue_position
from models import Task
from models.db import session_scope
from tests.utils.records import make_task, recording_kept
from tests.utils.workers import run_maintenance_in_process


def test_cron_enqueues_the_sweep_and_the_reconcile_and_the_maintenance_worker_runs_them(
    settings, redis, monkeypatch
):
    old = [make_task(settings, "done", timedelta(days=3 - i)) for i in range(3)]
    lost = make_task(settings, "processing", timedelta(minutes=5))
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, lost)
        task.attempts, task.worker_name = 1, "host.gone"  # a worker that died mid-run
        task.started_at = datetime.now(UTC) - timedelta(minutes=4)
    scheduler = build_scheduler(redis, settings)

    assert len(scheduler.enqueue_jobs()) == 2  # interval jobs fire at start
    assert scheduler.enqueue_jobs() == []  # ...then only on schedule
    queue = Queue(MAINTENANCE_QUEUE, connection=redis)
    jobs = {job.func_name: job for job in queue.get_jobs()}
    assert jobs.keys() == {"jobs.upkeep.sweeper.sweep", "jobs.upkeep.reconciler.reconcile"}

    monkeypatch.setenv("MAX_RECORDINGS", "2")  # the lost task's recording counts, and stays
    run_maintenance_in_process()

    assert [recording_kept(settings, t) for t in old] == [False, False, True]
    with session_scope(settings.DATABASE_URL) as session:
        assert session.get(Task, lost).status == "queued"  # taken back from the dead worker
    assert queue_position(Queue(settings.QUEUE_NAME, connection=redis), lost) == 1
    assert {job.get_status(refresh=True) for job in jobs.values()} == {"finished"}
