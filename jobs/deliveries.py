"""The delivery worker: `python -m jobs.deliveries [--burst]`. Serves the `deliveries` queue
(webhooks, Telegram replies) and nothing else, so a slow or dead client never delays recovery
on the `maintenance` queue.

Each process makes one delivery at a time and each attempt is bounded (a webhook's within
10 s), so the processes running are the concurrency: run more of them for more deliveries at
once. Loads no model, so an ordinary forking RQ worker is fine, and so is RQ's scheduler
beside it (it moves scheduled retries to the queue; with several processes one does).
"""

import argparse
import sys

from rq import Queue, Worker

import jobs.telegram_replies
import jobs.webhooks
from app.config import configure_logging, get_settings
from jobs.queues import DELIVERY_QUEUE, connect_redis

# Loaded once here, so each forked job starts with them instead of importing them (seconds).
JOB_MODULES = (jobs.telegram_replies, jobs.webhooks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a delivery worker.")
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings, "deliveries", capture_stdlib=True)
    redis = connect_redis(settings.REDIS_URL)
    worker = Worker([Queue(DELIVERY_QUEUE, connection=redis)], connection=redis)
    # In burst mode the scheduler moves due jobs to the queue once, at start, then stops.
    worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
