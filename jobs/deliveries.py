"""The delivery worker: `python -m jobs.deliveries [--burst]`. Serves the `deliveries` queue
(webhooks, Telegram replies) and nothing else, so a slow or dead client never delays recovery
on the `maintenance` queue.

Each process makes one delivery at a time and each attempt is bounded (a webhook's within
10 s), so the processes running are the concurrency: run more of them for more deliveries at
once. Loads no model, so an ordinary forking RQ worker is fine, and so is RQ's scheduler
beside it (it moves scheduled retries to the queue; with several processes one does).
"""

import sys

import jobs.delivery.telegram_replies
import jobs.delivery.webhooks
from jobs.queues import DELIVERY_QUEUE, run_model_free_worker

# Loaded once here, so each forked job starts with them instead of importing them (seconds).
JOB_MODULES = (jobs.delivery.telegram_replies, jobs.delivery.webhooks)


def main(argv: list[str] | None = None) -> int:
    return run_model_free_worker(DELIVERY_QUEUE, "deliveries", argv)


if __name__ == "__main__":
    sys.exit(main())
