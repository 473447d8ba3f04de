"""The maintenance worker: `python -m jobs.maintenance [--burst]`. Serves the `maintenance`
queue (the retention sweep) and loads no model, so an ordinary forking RQ worker is fine."""

import argparse
import sys

from rq import Queue, Worker

from app.config import configure_logging, get_settings
from jobs.queues import connect_redis

MAINTENANCE_QUEUE = "maintenance"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the maintenance worker.")
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings, "maintenance", capture_stdlib=True)
    redis = connect_redis(settings.REDIS_URL)
    worker = Worker([Queue(MAINTENANCE_QUEUE, connection=redis)], connection=redis)
    worker.work(burst=args.burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
