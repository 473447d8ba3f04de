"""Retrying what is transient: a lost database or Redis connection. Never a bad file."""

import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

P = ParamSpec("P")
T = TypeVar("T")

# 0.5 + 1 + 2 + 4 + 8 + 8 + 8 + 8 s: rides out a database or Redis restart of ~40 s.
DELAYS = (0.5, 1, 2, 4, 8, 8, 8, 8)


def is_transient(exc: BaseException) -> bool:
    if isinstance(
        exc, OperationalError | InterfaceError | RedisConnectionError | RedisTimeoutError
    ):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def with_retries(action: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call `action`, retrying with growing delays while the failure is transient."""
    for delay in DELAYS:
        try:
            return action(*args, **kwargs)
        except Exception as exc:
            if not is_transient(exc):
                raise
            logger.warning("{}: {}; retrying in {} s", action.__name__, type(exc).__name__, delay)
            time.sleep(delay)
    return action(*args, **kwargs)
