"""Deliveries have a queue and worker processes of their own: a slow client holds a delivery
worker, never the maintenance worker, so recovery (the reconciler) runs meanwhile. Real
`python -m jobs.deliveries` and `python -m jobs.maintenance` processes; the slow client is a
stand-in on 127.0.0.1 that takes connections and answers nothing until released."""

import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.job import Job, JobStatus

from jobs.delivery.announce import announce_end
from jobs.delivery.telegram_replies import enqueue_reply
from jobs.delivery.webhooks import enqueue_delivery
from jobs.queues import DELIVERY_QUEUE, MAINTENANCE_QUEUE, delivery_job_id, queue_position
from jobs.upkeep.reconciler import reconcile
from models import TaskStatus
from tests.utils.logs import logged
from tests.utils.paths import ROOT
from tests.utils.processes import running
from tests.utils.records import ended_with_callback, make_task
from tests.utils.waiting import wait_for


def model_free_worker(module: str) -> subprocess.Popen[str]:
    """`python -m <module>` as the Procfile runs it; callbacks to loopback allowed."""
    return subprocess.Popen(
        [sys.executable, "-m", module], cwd=ROOT, text=True,
        env={**os.environ, "WEBHOOK_ALLOW_PRIVATE": "true"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


@contextmanager
def held_target() -> Iterator[tuple[str, list[socket.socket]]]:
    """A webhook target that accepts connections and never answers; on leaving the block it
    closes them (the deliveries then fail at once). Yields its URL and the connections."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook", held
    finally:
        done.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


def announced_failure(settings, redis, url: str) -> uuid.UUID:
    """A failed task whose end was announced: its webhook to `url` is queued."""
    task = ended_with_callback(settings, url, status=TaskStatus.FAILED, error="test")
    announce_end(redis, task)
    return task.id


def test_the_reconciler_runs_while_slow_deliveries_hold_the_delivery_worker(settings, redis):
    maintenance = Queue(MAINTENANCE_QUEUE, connection=redis)
    with (
        running(model_free_worker("jobs.deliveries")),
        running(model_free_worker("jobs.maintenance")),
        held_target() as (url, held),
    ):
        for name in (DELIVERY_QUEUE, MAINTENANCE_QUEUE):
            queue = Queue(name, connection=redis)
            wait_for(lambda q=queue: Worker.all(queue=q), 60, f"a worker serving {name}")
        slow = [announced_failure(settings, redis, url) for _ in range(2)]
        wait_for(lambda: held, 30, "a delivery to reach the slow target")
        lost = make_task(settings, "queued", timedelta(minutes=5))  # a queued task without a job

        maintenance.enqueue(reconcile, result_ttl=600)  # as jobs/cron.py schedules it
        # Well inside the held delivery's 10 s timeout.
        wait_for(lambda: queue_position(Queue(settings.QUEUE_NAME, connection=redis), lost),
                 8, "the reconcile job to queue the lost task again")  # fmt: skip

        # The first delivery is still in progress; one process delivers one at a time.
        first = Job.fetch(delivery_job_id("webhook", slow[0], 1), connection=redis)
        assert first.get_status() == JobStatus.STARTED
        assert len(held) == 1


@pytest.mark.parametrize(
    ("enqueue", "what"), [(enqueue_delivery, "webhook"), (enqueue_reply, "telegram reply")]
)
def test_a_delivery_redis_refuses_is_logged_and_left_to_the_reconciler(enqueue, what: str):
    """Queuing a delivery is best effort: the task has ended and is stored; Redis refusing
    must not raise into the code that ended it."""
    task_id = uuid.uuid4()
    unreachable = Redis(port=1, socket_connect_timeout=1)  # nothing listens on port 1
    with logged("ERROR") as errors:
        assert enqueue(unreachable, task_id, attempt=2) is False
    [error] = errors
    assert error.startswith(f"ERROR task {task_id}: {what} 2 not queued: ")
