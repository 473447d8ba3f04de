"""The maintenance worker: `python -m jobs.maintenance [--burst]`. Serves the `maintenance`
queue (the retention sweep, the reconciler) and nothing else: deliveries have a queue and
worker of their own (jobs/deliveries.py), so recovery never waits behind a slow client. Loads
no model, so an ordinary forking RQ worker is fine, and so is RQ's scheduler beside it."""

import argparse
import sys

from rq import Queue, Worker

import jobs.reconciler
import jobs.sweeper
from app.config import configure_logging, get_settings
from jobs.queues import MAINTENANCE_QUEUE, connect_redis

# Loaded once here, so each forked job starts with them instead of importing them (seconds).
JOB_MODULES = (jobs.reconciler, jobs.sweeper)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the maintenance worker.")
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings, "maintenance", capture_stdlib=True)
    redis = connect_redis(settings.REDIS_URL)
    worker = Worker([Queue(MAINTENANCE_QUEUE, connection=redis)], connection=redis)
    # In burst mode the scheduler moves due jobs to the queue once, at start, then stops.
    worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
