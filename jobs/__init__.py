"""The worker side. Never imports app/ (settings in app/config.py excepted): the worker must
not load FastAPI. The API imports queues.py, history.py, metrics.py and, from delivery/,
the callback URL checks, the end-of-task announcement and the Telegram client; never the
model.

- Processes, `python -m jobs.<name>`: worker (transcription), maintenance, deliveries, cron.
- Shared with the API: queues.py (Redis and RQ handles), history.py (the JSONL log),
  metrics.py (worker counters in Redis).
- transcription/: the job and everything it runs on.
- delivery/: webhooks and Telegram, what a task's client is told when it ends.
- upkeep/: the reconciler, dead-worker judgement, retention.
"""

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

# Where the job functions' modules went when jobs/ was grouped into packages. A job that an
# earlier release queued, scheduled or left failed in Redis names its function (and its
# failure callback) by the old flat path, e.g. "jobs.transcribe.transcribe". RQ resolves such
# a name by importing `jobs` and reading attributes from it (rq.utils.import_attribute), so
# these attributes keep those jobs running through an upgrade. Loaded on first use only: the
# API never imports the model this way. Safe to drop once no job older than the regroup
# (2026-11) can remain: scheduled webhook retries and failed-job records included.
MOVED_JOB_MODULES = {
    "transcribe": "jobs.transcription.transcribe",
    "outcome": "jobs.transcription.outcome",
    "webhooks": "jobs.delivery.webhooks",
    "telegram_replies": "jobs.delivery.telegram_replies",
    "sweeper": "jobs.upkeep.sweeper",
    "reconciler": "jobs.upkeep.reconciler",
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any `jobs.<name>`

    def __getattr__(name: str) -> ModuleType:
        if name in MOVED_JOB_MODULES:
            return importlib.import_module(MOVED_JOB_MODULES[name])
        raise AttributeError(f"module 'jobs' has no attribute {name!r}")
