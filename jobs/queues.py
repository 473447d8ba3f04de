"""Redis and RQ handles shared by the API (enqueue, positions, liveness) and the worker.

Imports neither FastAPI nor faster-whisper: the API imports this module.
"""

import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from loguru import logger
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from rq import Callback, Queue, Worker
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.results import Result

from app.config import Settings

TRANSCRIBE_JOB = "jobs.transcription.transcribe.transcribe"
ON_JOB_FAILURE = "jobs.transcription.outcome.on_job_failure"
JOB_TIMEOUT_MARGIN_SECONDS = 60
# One key per live worker, refreshed by its heartbeat thread and expiring when it dies, and a
# set naming them, so readers need no SCAN over the keyspace.
WORKER_KEY_PREFIX = "asr:worker:"
WORKER_NAMES_KEY = "asr:workers"
# What each worker said last, kept a day past its heartbeat: the reconciler tells from it how
# long a silent worker has been silent (this key's remaining TTL: Redis's clock, not a host's)
# and whether its process runs on the reconciler's machine (jobs/upkeep/liveness.py).
WORKER_SEEN_PREFIX = "asr:worker-seen:"
WORKER_SEEN_TTL_SECONDS = 24 * 3600
# Model-free recovery jobs (the sweep, the reconciler), served by jobs/maintenance.py.
MAINTENANCE_QUEUE = "maintenance"
SHORT_LANE_SUFFIX = ":short"
# What tasks owe their clients (webhooks, Telegram replies), served by jobs/deliveries.py: a
# slow client never holds up recovery on the maintenance queue.
DELIVERY_QUEUE = "deliveries"
# A delivery job in one of these will still run: another one for the same attempt would double it.
PENDING_STATUSES = frozenset(
    {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED}
)


def connect_redis(redis_url: str, retries: int = 8, socket_timeout: float | None = None) -> Redis:
    """A client that retries a dropped connection (8 retries: ~10 s) instead of failing at
    once; the worker rides out a short Redis restart mid-job this way. `socket_timeout` is
    None for workers: RQ blocks on BLPOP for minutes by design."""
    return Redis.from_url(redis_url, **_client_options(Retry, retries, socket_timeout))


def connect_redis_async(redis_url: str, retries: int = 1, socket_timeout: float = 5) -> AsyncRedis:
    """`connect_redis` for the event loop: the API's polled routes, which must not block it."""
    return AsyncRedis.from_url(redis_url, **_client_options(AsyncRetry, retries, socket_timeout))


def _client_options(
    retry: type[Retry] | type[AsyncRetry], retries: int, socket_timeout: float | None
) -> dict[str, Any]:
    return {
        "retry": retry(
            ExponentialBackoff(cap=2.0, base=0.1),
            retries=retries,
            supported_errors=(RedisConnectionError, RedisTimeoutError),
        ),
        "socket_connect_timeout": 2,
        "socket_timeout": socket_timeout,
        "health_check_interval": 30,
    }


def transcription_queue(redis: Redis, settings: Settings) -> Queue:
    """The default model's queue."""
    return Queue(settings.QUEUE_NAME, connection=redis)


def queue_name(settings: Settings, model: str) -> str:
    """WHISPER_MODEL's tasks wait in QUEUE_NAME; every other model has a queue of its own,
    so a task never lands on a worker that loaded another model."""
    if model == settings.WHISPER_MODEL:
        return settings.QUEUE_NAME
    return f"{settings.QUEUE_NAME}.{re.sub(r'[^A-Za-z0-9_.-]+', '_', model)}"


def model_queue(redis: Redis, settings: Settings, model: str) -> Queue:
    return Queue(queue_name(settings, model), connection=redis)


def short_lane(queue: Queue) -> Queue:
    """The queue's lane for short recordings (SHORT_MAX_SECONDS): every worker of the model
    takes from it first, and `--lane short` workers take from it alone, so a voice note
    never waits behind hour-long files that are still queued."""
    return Queue(f"{queue.name}{SHORT_LANE_SUFFIX}", connection=queue.connection)


def model_queues(redis: Redis, settings: Settings) -> list[Queue]:
    """Every model's queue and its short lane."""
    queues = [model_queue(redis, settings, model) for model in settings.offered_models]
    return [lane for queue in queues for lane in (short_lane(queue), queue)]


def worker_queues(redis: Redis, settings: Settings, model: str, lane: str = "all") -> list[Queue]:
    """What a worker of `model` serves, in the order it takes from them: the short lane
    first, then (unless `lane` is "short") everything else."""
    queue = model_queue(redis, settings, model)
    return [short_lane(queue)] if lane == "short" else [short_lane(queue), queue]


def enqueue_transcription(
    queue: Queue, task_id: uuid.UUID, settings: Settings, replace: bool = False,
    duration: float | None = None,
) -> None:  # fmt: skip
    """Queue one task on `queue` (its model's), or on its short lane when the recording's
    `duration` is at most SHORT_MAX_SECONDS; the RQ job id is the task id, so a task is never
    queued twice. Without a `duration` it is read from the task's row.

    `replace` first drops the record of an earlier run (a retry reuses the id).
    """
    if duration is None:
        duration = _recorded_duration(settings, task_id)
    if duration is not None and 0 < duration <= settings.SHORT_MAX_SECONDS:
        queue = short_lane(queue)
    if replace:
        old = transcription_job(queue, task_id)
        if old is not None:
            Result.delete_all(old)
            old.delete()
    queue.enqueue(
        TRANSCRIBE_JOB,
        str(task_id),
        job_id=str(task_id),
        unique=True,
        # Our own check between segments fires first, with a readable reason; RQ's alarm is
        # the backstop for a job stuck inside a single call.
        job_timeout=settings.JOB_TIMEOUT_SECONDS + JOB_TIMEOUT_MARGIN_SECONDS,
        # Called by RQ also when it finds the job abandoned by a dead worker.
        on_failure=Callback(ON_JOB_FAILURE),
        result_ttl=settings.JOB_RESULT_TTL_SECONDS,
        failure_ttl=settings.JOB_FAILURE_TTL_SECONDS,
        description=f"transcribe task {task_id}",
    )


def previous_run_active(queue: Queue, task_id: uuid.UUID) -> bool:
    """A worker may still be filing the last run's outcome in RQ after the row is final;
    re-enqueueing under the same job id then would let RQ overwrite the new job."""
    job = transcription_job(queue, task_id)
    return job is not None and job.get_status(refresh=True) == JobStatus.STARTED


def delivery_job_id(kind: str, task_id: uuid.UUID, attempt: int) -> str:
    """One id per task and attempt, so the reconciler can tell whether an attempt is owed."""
    return f"{kind}-{task_id}-{attempt}"


def next_attempt_missing(redis: Redis, kind: str, task_id: uuid.UUID, attempts: int) -> bool:
    """No job for attempt `attempts + 1` of a delivery is queued, scheduled or running, nor
    one for attempt `attempts` (which may be about to schedule the next)."""
    queue = Queue(DELIVERY_QUEUE, connection=redis)
    ids = [delivery_job_id(kind, task_id, n) for n in (attempts, attempts + 1) if n > 0]
    return not any(
        job is not None and job.get_status(refresh=False) in PENDING_STATUSES
        for job in map(queue.fetch_job, ids)
    )


def requeue_owed_attempts(
    redis: Redis, kind: str, owed: Sequence[tuple[uuid.UUID, int]],
    enqueue: Callable[[Redis, uuid.UUID, int], bool],
) -> list[uuid.UUID]:  # fmt: skip
    """For each (task, attempts made) still owed a delivery of `kind`, queue the next attempt
    when no job for it is pending; the tasks queued again."""
    requeued = []
    for task_id, attempts in owed:
        if next_attempt_missing(redis, kind, task_id, attempts) and enqueue(
            redis, task_id, attempts + 1
        ):
            logger.warning("task {}: {} attempt {} had no job; queued again", task_id, kind,
                           attempts + 1)  # fmt: skip
            requeued.append(task_id)
    return requeued


def enqueue_delivery_job(
    redis: Redis, function: str, kind: str, task_id: uuid.UUID, attempt: int, delay: int, *,
    timeout: int, what: str,
) -> bool:  # fmt: skip
    """Queue (or schedule in `delay` s) attempt `attempt` of the task's `kind` delivery, a
    call of `function` (`what` names it in logs), under an id of its own. Best effort: False
    when it was not queued, because a job with that id is still pending (it makes the
    attempt) or because Redis refused (logged; the reconciler queues it later)."""
    options: dict[str, Any] = {
        "timeout": timeout, "result_ttl": 600, "failure_ttl": 7 * 24 * 3600,
        "description": f"{what} for task {task_id} #{attempt}",
    }  # fmt: skip
    job_id = delivery_job_id(kind, task_id, attempt)
    try:
        return _enqueue_delivery(redis, function, job_id, (str(task_id), attempt), delay, options)
    except RedisError as exc:
        logger.error("task {}: {} {} not queued: {}", task_id, what, attempt, exc)
        return False


def _enqueue_delivery(
    redis: Redis, function: str, job_id: str, args: tuple[Any, ...], delay: int,
    options: dict[str, Any],
) -> bool:  # fmt: skip
    queue = Queue(DELIVERY_QUEUE, connection=redis)
    old = queue.fetch_job(job_id)
    if old is not None:
        if old.get_status(refresh=False) in PENDING_STATUSES:
            return False
        Result.delete_all(old)  # an earlier run's attempt (a retried task), or one that crashed
        old.delete()
    status = JobStatus.SCHEDULED if delay > 0 else JobStatus.QUEUED
    job = queue.create_job(function, args=args, job_id=job_id, status=status, **options)
    try:  # unique: checked and written in one Lua script, so two callers cannot both enqueue
        if delay > 0:
            queue.schedule_job(job, datetime.now(UTC) + timedelta(seconds=delay), unique=True)
        else:
            queue.enqueue_job(job, unique=True)
    except DuplicateJobError:
        return False
    return True


def remove_job(queue: Queue, task_id: uuid.UUID, only_if_waiting: bool = False) -> bool:
    """Delete the task's RQ job from the queue and every registry; True if one was removed.

    With `only_if_waiting`, a job a worker has already started is left alone (the worker
    notices the canceled row itself).
    """
    job = transcription_job(queue, task_id)
    if job is None:
        return False
    if only_if_waiting and queue_position(queue, task_id) is None:
        return False
    Result.delete_all(job)  # the results stream outlives job.delete()
    job.delete()
    return True


@dataclass(frozen=True)
class QueueCounts:
    queued: int
    processing: int
    failed: int


def queue_counts(queue: Queue) -> QueueCounts:
    # cleanup=False: RQ's cleanup uses signals and raises outside the main thread (rq#2135).
    return QueueCounts(
        queued=queue.count,
        processing=queue.started_job_registry.get_job_count(cleanup=False),
        failed=queue.failed_job_registry.get_job_count(cleanup=False),
    )


def queue_position(queue: Queue, task_id: uuid.UUID) -> int | None:
    """1 for the next job a worker takes; None when the job is no longer waiting. A task
    on the model's queue has every short recording of its lane ahead of it."""
    with queue.connection.pipeline(transaction=False) as pipe:
        _ask_position(pipe, queue, task_id)
        return _position(*pipe.execute())


async def queue_position_async(redis: AsyncRedis, queue: Queue, task_id: uuid.UUID) -> int | None:
    """`queue_position` on the event loop; `queue` only names the keys."""
    async with redis.pipeline(transaction=False) as pipe:
        _ask_position(pipe, queue, task_id)
        return _position(*await pipe.execute())


def _ask_position(pipe: Any, queue: Queue, task_id: uuid.UUID) -> None:
    lane = short_lane(queue)
    pipe.lpos(lane.key, str(task_id))
    pipe.lpos(queue.key, str(task_id))
    pipe.llen(lane.key)


def _position(in_lane: int | None, in_queue: int | None, lane_length: int) -> int | None:
    if in_lane is not None:
        return int(in_lane) + 1
    return None if in_queue is None else int(lane_length) + int(in_queue) + 1


def transcription_job(queue: Queue, task_id: uuid.UUID) -> Job | None:
    """The task's job, on the model's queue or its short lane (RQ's `Queue.fetch_job` finds
    only a job whose origin is that very queue)."""
    try:
        return Job.fetch(str(task_id), connection=queue.connection)
    except NoSuchJobError:
        return None


def _recorded_duration(settings: Settings, task_id: uuid.UUID) -> float | None:
    from models import Task  # the API and the reconciler pass it; only odd callers get here
    from models.db import session_scope

    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, task_id)
        return task.duration_seconds if task is not None else None


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker says about itself in its heartbeat."""

    name: str
    queues: list[str]
    model: str
    device: str
    compute_type: str
    state: str  # "idle" or "busy"
    current_task: str | None
    load: float  # the host's 1-minute load average
    rss_mb: float  # the worker process's resident memory
    pid: int
    hostname: str
    started_at: str
    last_seen: str
    # Every task the worker is transcribing, the current job's and a batch's companions.
    tasks: list[str] = field(default_factory=list)
    # Names the process on its machine (jobs/upkeep/liveness.py); None where /proc cannot tell.
    process: str | None = None


def write_worker_heartbeat(redis: Redis, info: WorkerInfo, ttl_seconds: int) -> None:
    # The lasting record names no task: a deleted task leaves nothing behind in Redis.
    seen = replace(info, current_task=None, tasks=[])
    with redis.pipeline() as pipe:
        pipe.set(WORKER_KEY_PREFIX + info.name, json.dumps(info.__dict__), ex=ttl_seconds)
        pipe.set(WORKER_SEEN_PREFIX + info.name, json.dumps(seen.__dict__),
                 ex=WORKER_SEEN_TTL_SECONDS)  # fmt: skip
        pipe.sadd(WORKER_NAMES_KEY, info.name)
        pipe.execute()


def remove_worker_heartbeat(redis: Redis, name: str) -> None:
    """The worker stopped: it is no longer live. What it said last stays (WORKER_SEEN_PREFIX)
    for the reconciler, should a task still name it."""
    with redis.pipeline() as pipe:
        pipe.delete(WORKER_KEY_PREFIX + name)
        pipe.srem(WORKER_NAMES_KEY, name)
        pipe.execute()


def live_workers(redis: Redis) -> list[WorkerInfo]:
    """Workers whose heartbeat has not expired (RQ's own registry lags minutes behind a crash)."""
    names = sorted(
        n.decode() if isinstance(n, bytes) else n for n in redis.smembers(WORKER_NAMES_KEY)
    )
    if not names:
        return []
    workers = []
    for name, raw in zip(names, redis.mget([WORKER_KEY_PREFIX + n for n in names]), strict=True):
        if raw is None:  # expired: the worker died without saying goodbye
            redis.srem(WORKER_NAMES_KEY, name)
            continue
        data: dict[str, Any] = json.loads(raw)
        try:
            workers.append(WorkerInfo(**data))
        except TypeError:
            continue  # written by a worker of another version; it will expire
    return workers


def workers_serving(redis: Redis, queue_name: str) -> list[WorkerInfo]:
    return [w for w in live_workers(redis) if queue_name in w.queues]


@contextmanager
def redis_lock(redis: Redis, key: str, seconds: int) -> Iterator[bool]:
    """A Redis lock (SET NX EX): True if this caller holds it for the block. Released only
    by its holder (the token), and by expiry if the holder dies."""
    token = uuid.uuid4().hex
    acquired = bool(redis.set(key, token, nx=True, ex=seconds))
    try:
        yield acquired
    finally:
        if acquired and redis.get(key) == token.encode():
            redis.delete(key)


def run_model_free_worker(queue_name: str, log_name: str, argv: list[str] | None) -> int:
    """`python -m jobs.maintenance|jobs.deliveries [--burst]`: an ordinary forking RQ worker
    (it loads no model) on one queue, with RQ's scheduler beside it for scheduled jobs."""
    import argparse

    from app.config import configure_logging, get_settings

    parser = argparse.ArgumentParser(description=f"Run the {log_name} worker.")
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings, log_name, capture_stdlib=True)
    redis = connect_redis(settings.REDIS_URL)
    worker = Worker([Queue(queue_name, connection=redis)], connection=redis)
    # In burst mode the scheduler moves due jobs to the queue once, at start, then stops.
    worker.work(burst=args.burst, with_scheduler=True)
    return 0
