"""Whether a worker that stopped beating is dead: established, never inferred from late beats.

A heartbeat lapses when the worker died, and also when it is starved (a loaded host, the GIL
held by the decoder, SIGSTOP) while it goes on transcribing. So a lapsed heartbeat only makes
it suspect; the reconciler takes its run back on evidence of death (`judge`):
- its process, on this machine, has ended (the pid is gone or names another process now);
- on another machine, where its process cannot be looked at, it has missed
  WORKER_LOST_AFTER_MISSED_BEATS beats;
- it has been silent past the run's time limit (RQ's own records of the job and the worker,
  which live job_timeout + 60 s from the job's start, expire then too).
A run taken back on silence alone, from a worker that beats again afterwards, was not lost:
the attempt it was charged is refunded (`refund_runs_of_live_workers`), so MAX_ATTEMPTS
counts runs that died.
"""

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loguru import logger
from redis import Redis
from sqlalchemy import update

from app.config import Settings
from jobs.queues import (
    JOB_TIMEOUT_MARGIN_SECONDS,
    WORKER_SEEN_PREFIX,
    WORKER_SEEN_TTL_SECONDS,
    WorkerInfo,
)
from models import Task
from models.db import session_scope

# Runs taken back on silence alone: [task id, worker, its started_at] (JSON) -> when (Redis clock).
TAKEN_BACK_KEY = "asr:taken-back"


def process_identity(pid: int) -> str | None:
    """Names process `pid` of this machine for as long as it runs: the boot, the pid namespace
    (a container has its own), the pid and the process's start time (a pid is reused, a start
    time is not). None when no such process runs (an exited one awaiting reaping included),
    or where /proc cannot tell."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The fields after the command name (which may hold spaces and parentheses): the state
    # is the 3rd field of the line, the start time the 22nd.
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return f"{boot}/{namespace}/{pid}/{fields[19]}"


def process_running(info: WorkerInfo) -> bool | None:
    """Whether the worker's process still runs; None when it runs on another machine (or in
    another container), where it cannot be looked at."""
    here = process_identity(os.getpid())
    if not here or not info.process or _machine(info.process) != _machine(here):
        return None
    return process_identity(info.pid) == info.process


def _machine(identity: str) -> str:
    return identity.rsplit("/", 2)[0]


@dataclass(frozen=True)
class LastSeen:
    info: WorkerInfo
    silent_seconds: float  # since its last beat


def last_seen(redis: Redis, name: str) -> LastSeen | None:
    """What worker `name` said last, and how long ago; None when nothing is kept."""
    key = WORKER_SEEN_PREFIX + name
    with redis.pipeline() as pipe:
        pipe.get(key)
        pipe.pttl(key)
        raw, ttl_ms = pipe.execute()
    if raw is None or ttl_ms < 0:
        return None
    try:
        info = WorkerInfo(**json.loads(raw))
    except TypeError:
        return None  # written by a worker of another version
    return LastSeen(info, WORKER_SEEN_TTL_SECONDS - ttl_ms / 1000)


@dataclass(frozen=True)
class Verdict:
    dead: bool
    reason: str
    # Dead on silence alone: should the worker beat again, the run was not lost after all.
    presumed: bool = False


def judge(settings: Settings, seen: LastSeen | None, started_at: datetime) -> Verdict:
    """Whether the silent worker of a run that started at `started_at` is dead."""
    # Nothing kept (Redis lost it): the claim is the last sign of life we know of.
    silent = seen.silent_seconds if seen else (datetime.now(UTC) - started_at).total_seconds()
    running = process_running(seen.info) if seen else None
    if running is False:
        return Verdict(True, "its process has ended")
    if silent > settings.JOB_TIMEOUT_SECONDS + JOB_TIMEOUT_MARGIN_SECONDS:
        return Verdict(True, f"silent for {silent:.0f} s, past the time limit", presumed=True)
    if running:
        return Verdict(False, f"silent for {silent:.0f} s, but its process is running")
    missed = int(silent // (settings.WORKER_HEARTBEAT_TTL_SECONDS / 3))
    if missed >= settings.WORKER_LOST_AFTER_MISSED_BEATS:
        return Verdict(True, f"missed {missed} heartbeats", presumed=True)
    return Verdict(False, f"missed {missed} of {settings.WORKER_LOST_AFTER_MISSED_BEATS} "
                          "heartbeats")  # fmt: skip


def redis_time(redis: Redis) -> float:
    seconds, microseconds = redis.time()
    return seconds + microseconds / 1e6


def remember_taken_back(
    redis: Redis, task_id: uuid.UUID, worker_name: str, seen: LastSeen | None
) -> None:
    """A run taken back on silence alone, so that the worker's next beat can refund it."""
    incarnation = seen.info.started_at if seen else ""  # a restart may reuse the name
    entry = json.dumps([str(task_id), worker_name, incarnation])
    redis.hset(TAKEN_BACK_KEY, entry, redis_time(redis))


def refund_runs_of_live_workers(settings: Settings, redis: Redis) -> list[uuid.UUID]:
    """Tasks whose run was taken back from a silent worker that has beaten since: it was
    starved, not dead, so that run's attempt is not charged. Each run at most once."""
    refunded = []
    now = redis_time(redis)
    for entry, taken_at in redis.hgetall(TAKEN_BACK_KEY).items():
        task_id, worker_name, incarnation = json.loads(entry)
        since = now - float(taken_at)
        seen = last_seen(redis, worker_name)
        came_back = (seen is not None and seen.silent_seconds < since
                     and incarnation in ("", seen.info.started_at))  # fmt: skip
        # A worker silent for a day did die; a deleted task leaves nothing behind in Redis.
        settled = came_back or since > WORKER_SEEN_TTL_SECONDS or not task_exists(settings, task_id)
        # HDEL settles each entry once, whoever runs the pass.
        if settled and redis.hdel(TAKEN_BACK_KEY, entry) and came_back:
            refund_attempt(settings, uuid.UUID(task_id), worker_name)
            refunded.append(uuid.UUID(task_id))
    return refunded


def task_exists(settings: Settings, task_id: str) -> bool:
    with session_scope(settings.DATABASE_URL) as session:
        return session.get(Task, uuid.UUID(task_id)) is not None


def refund_attempt(settings: Settings, task_id: uuid.UUID, worker_name: str) -> None:
    with session_scope(settings.DATABASE_URL) as session:
        session.execute(
            update(Task)
            .where(Task.id == task_id, Task.attempts > 0)
            .values(attempts=Task.attempts - 1)
        )
    logger.warning("task {}: its run on {} was taken back, but the worker beat again: "
                   "that attempt is not charged", task_id, worker_name)  # fmt: skip
