"""Engine and the one transaction helper both the API and the jobs use."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

# A pooled connection unused for longer than this is checked before use (a worker may sit
# idle for hours; Postgres may have restarted meanwhile). One in steady use is not: a check
# per checkout was a database round trip per API request (docs/performance-notes.md).
PING_AFTER_IDLE_SECONDS = 10


@lru_cache
def get_engine(database_url: str) -> Engine:
    # Up to 50 connections: more than the API's 40 request threads, so a burst of requests
    # queues on the threads, not on the pool. 40 of them are kept: a connection beyond
    # pool_size is closed when it comes back, and under a burst of polls opening them again
    # (a new Postgres backend each) cost more than the requests (docs/performance-notes.md).
    # Pools open connections only when asked, so a worker still holds one or two.
    engine = create_engine(database_url, pool_size=40, max_overflow=10)
    event.listen(engine, "checkin", _note_last_use)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _note_last_use(dbapi_connection: Any, record: Any) -> None:
    record.info["last_used"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A connection idle too long gets a round trip first; a dead one is replaced (the pool
    retries the checkout on DisconnectionError) instead of failing the request or job."""
    if time.monotonic() - record.info.get("last_used", 0.0) < PING_AFTER_IDLE_SECONDS:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as error:
        raise exc.DisconnectionError(f"connection lost while idle: {error}") from error


@lru_cache
def get_session_factory(database_url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(database_url), expire_on_commit=False)


@contextmanager
def session_scope(database_url: str) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    session = get_session_factory(database_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
