"""Task events for `GET /api/v1/asr/events`: one LISTEN connection per API process, fanned
out to every open stream.

Postgres itself announces each change of a task (a trigger, alembic/versions/0008), so what
any process does — the API, a worker, the reconciler, the sweeper — is seen here without
their code knowing. The connection is opened for the first stream and kept while the process
runs (closed when its event loop ends).
"""

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import psycopg
from loguru import logger
from pydantic import BaseModel, Field
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth import Caller, active_key_ids
from app.config import Settings
from app.errors import OUTAGES
from jobs.queues import model_queue, queue_position
from models import Task, TaskStatus
from models.db import session_scope

CHANNEL = "task_events"
# Events a slow stream may fall behind by before it is told to start over (`reset`).
SUBSCRIBER_BUFFER = 500
RECONNECT_SECONDS = 1.0
# How long a new stream waits for the LISTEN connection before answering 503.
CONNECT_TIMEOUT_SECONDS = 10.0
# How often the keys of open streams are checked: a key is checked when its stream opens,
# and a stream may stay open for days; a revoked key's streams end within this.
KEY_CHECK_SECONDS = 2.0
ERROR_PREVIEW_CHARS = 500


class TaskEvent(BaseModel):
    """One task as the event stream shows it: enough to draw a row of a task list."""

    task_id: uuid.UUID = Field(description="The task.")
    op: Literal["insert", "update", "delete", "snapshot"] = Field(
        description="What happened to the row; `snapshot` in the first event of a stream."
    )
    status: str = Field(description="queued, processing, done, failed or canceled.")
    progress: float = Field(description="Percent of the audio transcribed, to a tenth.")
    position: int | None = Field(default=None, description="Queued only: place in the queue.")
    filename: str | None = Field(default=None, description="The uploaded file's name.")
    model: str | None = Field(default=None, description="The Whisper model.")
    duration: float | None = Field(default=None, description="Audio length in seconds.")
    rtf: float | None = Field(default=None, description="Processing time / audio length.")
    error: str | None = Field(default=None, description="Failed only: why (shortened).")
    created_at: datetime | None = Field(default=None, description="When it was submitted.")
    # Who may see it; never sent.
    api_key_id: uuid.UUID | None = Field(default=None, exclude=True)


RESET = object()  # in a subscriber's queue: events were lost, the client must start over


class Subscription:
    def __init__(self, key_id: uuid.UUID | None = None) -> None:
        self.queue: asyncio.Queue[TaskEvent | object] = asyncio.Queue(SUBSCRIBER_BUFFER)
        self.key_id = key_id  # the API key the stream was opened with; None with auth off
        self.key_revoked = False

    def deliver(self, item: TaskEvent | object) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:  # a client that stopped reading: drop its backlog
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESET)


class TaskEventHub:
    """Subscribers get every task event of this process's LISTEN connection."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.conninfo = settings.DATABASE_URL.replace("postgresql+psycopg://", "postgresql://")
        self.subscribers: set[Subscription] = set()
        self.listener: asyncio.Task[None] | None = None
        self.listening: asyncio.Event | None = None
        self.key_watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the LISTEN connection if it is not open yet; TimeoutError if the database
        does not answer. It then stays open for the life of the process."""
        if self.listener is None or self.listener.done():
            self.listening = asyncio.Event()
            self.listener = asyncio.create_task(self._listen(self.listening))
        if self.key_watcher is None or self.key_watcher.done():
            self.key_watcher = asyncio.create_task(self._watch_keys())
        assert self.listening is not None
        await asyncio.wait_for(self.listening.wait(), CONNECT_TIMEOUT_SECONDS)

    @contextlib.contextmanager
    def subscription(self, key_id: uuid.UUID | None = None) -> Iterator[Subscription]:
        """Receives every event committed while the block runs (after `start`); marked
        `key_revoked` once `key_id` is revoked."""
        subscription = Subscription(key_id)
        self.subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self.subscribers.discard(subscription)

    async def _listen(self, listening: asyncio.Event) -> None:
        connected_before = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if connected_before:  # what changed while we were away is lost
                        self._broadcast(RESET)
                    connected_before = True
                    listening.set()
                    async for notice in conn.notifies():
                        self._broadcast(await self._described(notice.payload))
            except (psycopg.Error, OSError) as exc:
                listening.clear()
                logger.warning("task events: listener lost the database ({}); reconnecting", exc)
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _watch_keys(self) -> None:
        """Marks the subscriptions whose key has been revoked (or deleted) since."""
        while True:
            await asyncio.sleep(KEY_CHECK_SECONDS)
            watched = {s.key_id for s in self.subscribers if s.key_id is not None}
            if not watched:
                continue
            try:
                active = await asyncio.to_thread(self._active_keys, watched)
            except OUTAGES as exc:  # the stream stays until the key can be checked again
                logger.warning("task events: could not check the keys of open streams: {}", exc)
                continue
            # Only the keys just looked up: a stream opened meanwhile was not checked here.
            revoked = watched - active
            for subscription in list(self.subscribers):
                if subscription.key_id in revoked:
                    subscription.key_revoked = True

    def _active_keys(self, key_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        with session_scope(self.settings.DATABASE_URL) as session:
            return active_key_ids(session, key_ids)

    async def _described(self, payload: str) -> TaskEvent | object:
        try:
            return await asyncio.to_thread(self.describe, payload)
        except Exception as exc:  # a database or Redis hiccup: clients re-read their list
            logger.warning("task events: could not describe {}: {}", payload, exc)
            return RESET

    def _broadcast(self, item: TaskEvent | object) -> None:
        for subscription in list(self.subscribers):
            subscription.deliver(item)

    def describe(self, payload: str) -> TaskEvent:
        """The notification (id, op, status, progress, owner), completed from the row."""
        notice = json.loads(payload)
        event = TaskEvent.model_validate(notice)
        if event.op == "delete":
            return event
        with session_scope(self.settings.DATABASE_URL) as session:
            task = session.get(Task, event.task_id)
            if task is None:  # deleted since: the delete event follows
                return event
            return self._positioned(session, event.model_copy(update=self._row_fields(task)), task)

    def snapshot(self, caller: Caller, limit: int) -> list[TaskEvent]:
        """The caller's newest tasks, as a stream's first event."""
        query = select(Task).order_by(Task.created_at.desc(), Task.seq.desc()).limit(limit)
        if not caller.is_admin and caller.key_id is not None:
            query = query.where(Task.api_key_id == caller.key_id)
        with session_scope(self.settings.DATABASE_URL) as session:
            tasks = session.scalars(query).all()
            return [self._positioned(session, self._snapshot_event(task), task) for task in tasks]

    def _snapshot_event(self, task: Task) -> TaskEvent:
        return TaskEvent(task_id=task.id, op="snapshot", status=task.status,
                         progress=task.progress, **self._row_fields(task))  # fmt: skip

    def _positioned(self, session: Session, event: TaskEvent, task: Task) -> TaskEvent:
        if event.status != TaskStatus.QUEUED:
            return event
        try:
            own_queue = model_queue(self.redis, self.settings, task.model)
            position = queue_position(own_queue, task.id)
        except RedisError:
            return event
        if position is None:
            # A new row is announced at its commit, just before its job is enqueued: its place
            # is behind the queued tasks of its model that came before it.
            ahead = session.scalar(
                select(func.count()).select_from(Task).where(
                    Task.status == TaskStatus.QUEUED, Task.model == task.model,
                    Task.seq < task.seq,
                )
            )  # fmt: skip
            position = (ahead or 0) + 1
        return event.model_copy(update={"position": position})

    @staticmethod
    def _row_fields(task: Task) -> dict[str, Any]:
        error = task.error
        if error is not None and len(error) > ERROR_PREVIEW_CHARS:
            error = error[:ERROR_PREVIEW_CHARS] + "…"
        return {
            "filename": task.filename,
            "model": task.model,
            "duration": task.duration_seconds,
            "rtf": task.rtf,
            "error": error,
            "created_at": task.created_at,
            "api_key_id": task.api_key_id,
        }
