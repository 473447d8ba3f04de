"""When this worker process was asked to stop (SIGTERM), for the running job to see."""

import time

_requested_at: float | None = None


def request() -> None:
    global _requested_at
    if _requested_at is None:
        _requested_at = time.monotonic()


def overdue(grace_seconds: float) -> bool:
    """True once a stop was requested more than `grace_seconds` ago."""
    return _requested_at is not None and time.monotonic() - _requested_at > grace_seconds


def reset() -> None:
    global _requested_at
    _requested_at = None
