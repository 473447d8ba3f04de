"""The scheduler enqueues the sweep onto the maintenance queue; the maintenance worker runs it."""

import os
import subprocess
import sys
from datetime import timedelta

from rq import Queue

from jobs.cron import build_scheduler
from jobs.maintenance import MAINTENANCE_QUEUE
from tests.utils.paths import ROOT
from tests.utils.records import make_task, recording_kept


def test_cron_enqueues_the_sweep_and_the_maintenance_worker_runs_it(settings, redis):
    old = [make_task(settings, "done", timedelta(days=3 - i)) for i in range(3)]
    scheduler = build_scheduler(redis, settings)

    assert len(scheduler.enqueue_jobs()) == 2  # interval jobs fire at start
    assert scheduler.enqueue_jobs() == []  # ...then only on schedule
    queue = Queue(MAINTENANCE_QUEUE, connection=redis)
    jobs = {job.func_name: job for job in queue.get_jobs()}
    assert jobs.keys() == {"jobs.sweeper.sweep", "jobs.reconciler.reconcile"}
    job = jobs["jobs.sweeper.sweep"]

    result = subprocess.run(
        [sys.executable, "-m", "jobs.maintenance", "--burst"], cwd=ROOT, timeout=120,
        env={**os.environ, "MAX_RECORDINGS": "1"}, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert [recording_kept(settings, t) for t in old] == [False, False, True]
    assert job.get_status(refresh=True) == "finished"
