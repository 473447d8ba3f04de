"""Engine and the one transaction helper both the API and the jobs use."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker


@lru_cache
def get_engine(database_url: str) -> Engine:
    # pool_pre_ping: a worker may sit idle for hours; a dropped connection is replaced
    # instead of failing the next job. Up to 50 connections: more than the API's 40 request
    # threads, so a burst of requests queues on the threads, not on the pool.
    return create_engine(database_url, pool_pre_ping=True, pool_size=20, max_overflow=30)


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
