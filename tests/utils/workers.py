"""The real worker classes, run inside the test process in burst mode (as RQ's own tests
do): the model is loaded once per test session and kept, and no process starts per drain.
Tests about signals, crashes or process boundaries start real processes instead
(`tests/utils/processes.py`)."""

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis import Redis
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from app.config import get_settings
from jobs import shutdown
from jobs.queues import MAINTENANCE_QUEUE, connect_redis, model_queue
from jobs.worker import TranscriptionWorker


@contextmanager
def _own_signal_handlers() -> Iterator[None]:
    """RQ installs its SIGINT/SIGTERM handlers for the run; pytest gets its own back after."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        shutdown.reset()


def run_worker_in_process(model: str | None = None) -> None:
    """A TranscriptionWorker serving `model`'s queue (default WHISPER_MODEL) until it is
    empty. Settings are read afresh, so environment changes made by the test apply."""
    get_settings.cache_clear()
    settings = get_settings()
    redis = connect_redis(settings.REDIS_URL)
    queue = model_queue(redis, settings, model or settings.worker_model)
    worker = TranscriptionWorker([queue], connection=redis, name=f"test.{uuid.uuid4().hex[:8]}")
    with _own_signal_handlers(), redis:
        worker.work(burst=True, logging_level="WARNING")


def run_maintenance_in_process() -> None:
    """One burst of the maintenance queue: due scheduled jobs (retries) are moved to the queue
    first, as `python -m jobs.maintenance --burst` does."""
    get_settings.cache_clear()
    redis = connect_redis(get_settings().REDIS_URL)
    queue = Queue(MAINTENANCE_QUEUE, connection=redis)
    worker = SimpleWorker([queue], connection=redis, name=f"test-maint.{uuid.uuid4().hex[:8]}")
    with _own_signal_handlers(), redis:
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")


def maintenance_pending(redis: Redis) -> int:
    """Maintenance jobs queued, running or scheduled for later (a retry)."""
    queue = Queue(MAINTENANCE_QUEUE, connection=redis)
    scheduled = ScheduledJobRegistry(queue=queue).get_job_count(cleanup=False)
    started = StartedJobRegistry(queue=queue).get_job_count(cleanup=False)
    return queue.count + scheduled + started


def run_maintenance_until(condition: Callable[[], object], timeout: float = 60) -> None:
    """Maintenance bursts until `condition()` holds; at least one burst runs."""
    deadline = time.monotonic() + timeout
    while True:
        run_maintenance_in_process()
        if condition():
            return
        assert time.monotonic() < deadline, "the maintenance jobs did not get there in time"
        time.sleep(0.2)


def run_maintenance_until_idle(timeout: float = 60) -> None:
    """Maintenance bursts until no maintenance job is queued or scheduled: every delivery,
    reply and retry has run to its end (a retry that should not exist runs too, and shows)."""
    with connect_redis(get_settings().REDIS_URL) as redis:
        run_maintenance_until(lambda: maintenance_pending(redis) == 0, timeout)
