"""Request dependencies. Everything comes from `app.state`, set once by `create_app`."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from redis import Redis
from rq import Queue
from sqlalchemy.orm import Session

from app.config import Settings
from jobs.queues import transcription_queue
from models.db import session_scope
from storage import Storage


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    """A sync session for the (sync) route. Opened and closed on the event loop, not in the
    thread pool: under load, a teardown queued behind new requests for a thread would keep
    its connection out of the pool until the pool ran dry."""
    with session_scope(settings.DATABASE_URL) as session:
        yield session


def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


def get_queue(redis: Annotated[Redis, Depends(get_redis)], settings: SettingsDep) -> Queue:
    return transcription_queue(redis, settings)


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


# scope="function": the session (and its pooled connection) is released when the route
# returns, not after a long streamed response has been sent.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
RedisDep = Annotated[Redis, Depends(get_redis)]
QueueDep = Annotated[Queue, Depends(get_queue)]
StorageDep = Annotated[Storage, Depends(get_storage)]
