"""The maintenance worker: `python -m jobs.maintenance [--burst]`. Serves the `maintenance`
queue (the retention sweep, the reconciler) and nothing else: deliveries have a queue and
worker of their own (jobs/deliveries.py), so recovery never waits behind a slow client. Loads
no model, so an ordinary forking RQ worker is fine, and so is RQ's scheduler beside it."""

import sys

import jobs.upkeep.reconciler
import jobs.upkeep.sweeper
from jobs.queues import MAINTENANCE_QUEUE, run_model_free_worker

# Loaded once here, so each forked job starts with them instead of importing them (seconds).
JOB_MODULES = (jobs.upkeep.reconciler, jobs.upkeep.sweeper)


def main(argv: list[str] | None = None) -> int:
    return run_model_free_worker(MAINTENANCE_QUEUE, "maintenance", argv)


if __name__ == "__main__":
    sys.exit(main())
