"""Request dependencies. Everything comes from `app.state`, set once by `create_app`.

The ones that only read `app.state` are `async def`: FastAPI runs a sync dependency in the
thread pool, and a hop there per dependency per request cost more than the route's own work
(docs/performance-notes.md, "API profile")."""

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from redis import Redis
from rq import Queue
from sqlalchemy.orm import Session

from app.config import Settings
from jobs.queues import transcription_queue
from models.db import session_scope
from storage import Storage


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]

# The sessions the current request opened, for `ReleasingRoute`; None outside one.
_request_sessions: ContextVar[list[Session] | None] = ContextVar("request_sessions", default=None)


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    """A sync session for the (sync) route. Opened and closed on the event loop, not in the
    thread pool: under load, a teardown queued behind new requests for a thread would keep
    its connection out of the pool until the pool ran dry."""
    with session_scope(settings.DATABASE_URL) as session:
        sessions = _request_sessions.get()
        if sessions is not None:
            sessions.append(session)
        yield session


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def get_queue(redis: Annotated[Redis, Depends(get_redis)], settings: SettingsDep) -> Queue:
    return transcription_queue(redis, settings)


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


# scope="function": the session is closed when the route returns, not after a long streamed
# response has been sent; routers use `ReleasingRoute` to free its connection even earlier.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
RedisDep = Annotated[Redis, Depends(get_redis)]
QueueDep = Annotated[Queue, Depends(get_queue)]
StorageDep = Annotated[Storage, Depends(get_storage)]


class ReleasingRoute(APIRoute):
    """A route whose sync endpoint commits its request's sessions as it returns, so their
    connections are back in the pool before the response is serialized.

    FastAPI ends a function-scoped dependency only after serializing the response, and for a
    sync route that serializing waits for a thread-pool thread: under a burst of polls every
    pooled connection was held by a request waiting for a thread while every thread waited for
    a connection. Rows stay readable after the commit (`expire_on_commit=False`); the
    dependency's own commit and close then find nothing left to do."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _releasing_sessions(endpoint), **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_releasing(request: Request) -> Response:
            token = _request_sessions.set([])
            try:
                return await handle(request)
            finally:
                _request_sessions.reset(token)

        return handle_releasing


def _releasing_sessions(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The endpoint, committing the request's sessions in its own thread once it returns.
    Async endpoints serialize on the event loop (no wait for a thread) and generators stream
    while the response is sent: both are left as they are."""
    if any(check(endpoint) for check in (inspect.iscoroutinefunction,
            inspect.isgeneratorfunction, inspect.isasyncgenfunction)):  # fmt: skip
        return endpoint

    @functools.wraps(endpoint)  # FastAPI reads the parameters through __wrapped__
    def release_after(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        # In the thread pool, which sees the request's context vars (anyio copies them).
        for session in _request_sessions.get() or ():
            session.commit()
        return result

    return release_after
