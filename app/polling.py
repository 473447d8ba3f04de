"""Polling less: an ETag on results (304 while nothing changed) and a Retry-After hint on
unfinished ones that follows the estimated wait.

The hint must cost a poll nothing it would not spend anyway: the recent real-time factor
and the number of live workers are refreshed at most every HINT_REFRESH_SECONDS per API
process, and the task's own duration and progress (already loaded) do the rest.
"""

import hashlib
import math
import threading
import time

from fastapi import Request, Response
from loguru import logger
from redis import Redis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from app.estimates import recent_rtf
from jobs.queues import live_workers
from models import Task, TaskStatus
from models.db import session_scope

HINT_REFRESH_SECONDS = 5.0
# Bounds of the hint: never hammer, never sleep through a change; the event stream
# (`/asr/events/{id}`) is the way to hear of a change at once.
MIN_RETRY_AFTER, MAX_RETRY_AFTER = 1, 30


class PollHints:
    """Per API process: how fast work goes and how many workers do it, a few seconds old."""

    def __init__(self) -> None:
        self.rtf = 0.0
        self.workers = 0
        self.refreshed_at = float("-inf")
        self.lock = threading.Lock()

    async def retry_after(
        self, database_url: str, redis: Redis, task: Task, position: int | None
    ) -> int:
        """Seconds worth waiting before asking about `task` (queued or processing) again."""
        if time.monotonic() - self.refreshed_at >= HINT_REFRESH_SECONDS:
            await run_in_threadpool(self._refresh, database_url, redis)
        if self.workers == 0:
            return MAX_RETRY_AFTER  # nothing moves until a worker starts
        duration = task.duration_seconds or 0.0
        if task.status == TaskStatus.PROCESSING:
            seconds = duration * (100 - (task.progress or 0)) / 100 * self.rtf
        else:  # queued: those ahead taken to be about as long as this one
            seconds = (position or 1) * duration * self.rtf / self.workers
        return min(MAX_RETRY_AFTER, max(MIN_RETRY_AFTER, math.ceil(seconds)))

    def recent_rtf(self, database_url: str, redis: Redis) -> float:
        """The recent real-time factor, at most HINT_REFRESH_SECONDS old; blocking (call it
        from a thread): a submit's estimate uses it instead of a query of its own."""
        if time.monotonic() - self.refreshed_at >= HINT_REFRESH_SECONDS:
            self._refresh(database_url, redis)
        return self.rtf

    def _refresh(self, database_url: str, redis: Redis) -> None:
        """In a thread: a few seconds in, one poll pays for everyone's hint."""
        with self.lock:
            if time.monotonic() - self.refreshed_at < HINT_REFRESH_SECONDS:
                return  # another poll refreshed it while this one waited for the lock
            try:
                self.workers = len(live_workers(redis))
            except RedisError as exc:  # a hint is not worth a 503
                logger.warning("poll hint without workers: {}", exc)
            with session_scope(database_url) as session:
                self.rtf = recent_rtf(session)
            self.refreshed_at = time.monotonic()


def conditional(request: Request, body: bytes, headers: dict[str, str]) -> Response:
    """`body` as JSON with a strong ETag of its bytes, or a bodiless 304 when the client's
    `If-None-Match` already names it."""
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    headers = {**headers, "ETag": etag, "Cache-Control": "no-cache"}
    presented = request.headers.get("if-none-match", "")
    if etag in (tag.strip().removeprefix("W/") for tag in presented.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
