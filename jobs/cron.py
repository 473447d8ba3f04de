"""The scheduler: `python -m jobs.cron` — RQ's cron scheduler (what `rq cron` runs) with the
sweep registered every SWEEP_INTERVAL_SECONDS onto the `maintenance` queue.

Run exactly one: two would enqueue every sweep twice (the sweep's lock makes the second a
no-op, but it is wasted work). Interval jobs fire once at start, then on schedule.
"""

import sys

from redis import Redis
from rq.cron import CronScheduler

from app.config import Settings, configure_logging, get_settings
from jobs.maintenance import MAINTENANCE_QUEUE
from jobs.queues import connect_redis
from jobs.upkeep.reconciler import reconcile
from jobs.upkeep.sweeper import sweep

SWEEP_TIMEOUT_SECONDS = 3600


def build_scheduler(redis: Redis, settings: Settings) -> CronScheduler:
    scheduler = CronScheduler(connection=redis)
    scheduler.register(
        sweep, queue_name=MAINTENANCE_QUEUE, interval=settings.SWEEP_INTERVAL_SECONDS,
        job_timeout=SWEEP_TIMEOUT_SECONDS, result_ttl=3600, failure_ttl=7 * 24 * 3600,
    )  # fmt: skip
    scheduler.register(
        reconcile, queue_name=MAINTENANCE_QUEUE, interval=settings.RECONCILE_INTERVAL_SECONDS,
        job_timeout=600, result_ttl=600,
    )  # fmt: skip
    return scheduler


def main() -> int:
    settings = get_settings()
    configure_logging(settings, "cron", capture_stdlib=True)
    build_scheduler(connect_redis(settings.REDIS_URL), settings).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
