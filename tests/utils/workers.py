"""The real worker classes, run inside the test process in burst mode (as RQ's own tests
do): the model is loaded once per test session and kept, and no process starts per drain.
Tests about signals, crashes or process boundaries start real processes instead
(`tests/utils/processes.py`)."""

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.timeouts import TimerDeathPenalty

from app.config import get_settings
from jobs.queues import (
    DELIVERY_QUEUE,
    MAINTENANCE_QUEUE,
    connect_redis,
    live_workers,
    worker_queues,
)
from jobs.transcription import shutdown
from jobs.worker import TranscriptionWorker

# What the model-free workers serve: jobs/maintenance.py and jobs/deliveries.py.
MODEL_FREE_QUEUES = (MAINTENANCE_QUEUE, DELIVERY_QUEUE)


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
    queues = worker_queues(redis, settings, model or settings.worker_model, settings.WORKER_LANE)
    worker = TranscriptionWorker(queues, connection=redis, name=f"test.{uuid.uuid4().hex[:8]}")
    with _own_signal_handlers(), redis:
        worker.work(burst=True, logging_level="WARNING")


def run_maintenance_in_process() -> None:
    """One burst of the maintenance and delivery queues: due scheduled jobs (retries) are moved
    to the queue first, as `python -m jobs.maintenance --burst` (and `jobs.deliveries`) do."""
    get_settings.cache_clear()
    redis = connect_redis(get_settings().REDIS_URL)
    queues = [Queue(name, connection=redis) for name in MODEL_FREE_QUEUES]
    worker = SimpleWorker(queues, connection=redis, name=f"test-maint.{uuid.uuid4().hex[:8]}")
    with _own_signal_handlers(), redis:
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")


def maintenance_pending(redis: Redis) -> int:
    """Maintenance and delivery jobs queued, running or scheduled for later (a retry)."""
    pending = 0
    for queue in (Queue(name, connection=redis) for name in MODEL_FREE_QUEUES):
        scheduled = ScheduledJobRegistry(queue=queue).get_job_count(cleanup=False)
        started = StartedJobRegistry(queue=queue).get_job_count(cleanup=False)
        pending += queue.count + scheduled + started
    return pending


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


class ThreadedTranscriptionWorker(TranscriptionWorker):
    """The real TranscriptionWorker serving from a thread of the test process: the job time
    limit by a timer instead of SIGALRM, no signal handlers (those belong to the main thread),
    and a dequeue loop that notices a stop request within a second."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        while not self._stop_requested:
            found = super().dequeue_job_and_maintain_ttl(1, max_idle_time=1)
            if found is not None:
                return found
        return None


@contextmanager
def worker_thread(redis: Redis) -> Iterator[TranscriptionWorker]:
    """A long-running worker in a thread of this process, ready (heartbeat written) on
    entry, stopped on exit: a live worker without a process start or a second model load."""
    get_settings.cache_clear()
    settings = get_settings()
    connection = connect_redis(settings.REDIS_URL)
    queues = worker_queues(connection, settings, settings.worker_model)
    worker = ThreadedTranscriptionWorker(
        queues, connection=connection, name=f"test-thread.{uuid.uuid4().hex[:8]}"
    )
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            worker.work(logging_level="WARNING")
        except BaseException as exc:  # shown by the test rather than lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=serve, name="test-worker", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not any(w.name == worker.name for w in live_workers(redis)):
            assert not failure and thread.is_alive(), f"the worker thread ended: {failure}"
            assert time.monotonic() < deadline, "timed out waiting for the worker's heartbeat"
            time.sleep(0.05)
        yield worker
    finally:
        worker._stop_requested = True
        thread.join(timeout=60)
        connection.close()
    assert not thread.is_alive(), "the worker thread did not stop within 60 s"
    assert not failure, failure
