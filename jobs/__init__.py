"""The worker side. Never imports app/ (settings in app/config.py excepted): the worker must
not load FastAPI. The API imports queues.py, history.py, metrics.py and, from delivery/,
the callback URL checks, the end-of-task announcement (with the webhook and Telegram reply
modules it queues) and the Telegram client; never the model.

- Processes, `python -m jobs.<name>`: worker (transcription), maintenance, deliveries, cron.
- Shared with the API: queues.py (Redis and RQ handles), history.py (the JSONL log),
  metrics.py (worker counters in Redis).
- transcription/: the job and everything it runs on.
- delivery/: webhooks and Telegram, what a task's client is told when it ends.
- upkeep/: the reconciler, dead-worker judgement, retention.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

# Where the modules RQ names went when jobs/ was grouped into packages (2026-11). What an
# earlier release left in Redis names them by the old flat path: a queued, scheduled or failed
# job its function and failure callback ("jobs.transcribe.transcribe"), a kept result the class
# of its pickled value ("jobs.reconciler.ReconcileReport"). Those old paths import as the
# moved modules, so such jobs run and such results load after an upgrade. Only on demand: the
# API never loads the model this way. Safe to drop once nothing older than the regroup can
# remain in Redis: failed jobs are kept 7 days (JOB_FAILURE_TTL_SECONDS, the deliveries'
# and the sweep's failure_ttl).
MOVED_MODULES = {
    "jobs.transcribe": "jobs.transcription.transcribe",
    "jobs.outcome": "jobs.transcription.outcome",
    "jobs.webhooks": "jobs.delivery.webhooks",
    "jobs.telegram_replies": "jobs.delivery.telegram_replies",
    "jobs.sweeper": "jobs.upkeep.sweeper",
    "jobs.reconciler": "jobs.upkeep.reconciler",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module that lives elsewhere now: the same module
    object, so its functions and classes are the ones the rest of the code uses."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED_MODULES[spec.name])
        spec.loader_state = module.__spec__  # the import system stamps the alias's spec on it
        return module

    def exec_module(self, module: ModuleType) -> None:
        alias = module.__spec__
        assert alias is not None
        module.__spec__ = alias.loader_state  # its own again: it was run once, under its name


if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(MovedModules())  # last: only what no other finder finds
