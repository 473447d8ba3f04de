"""Waiting, bounded in time: for a condition, or for a server to answer."""

import time
from collections.abc import Callable, Container

import httpx


def wait_for(condition: Callable[[], object], timeout: float, message: str) -> object:
    """`condition()`'s first truthy value; an AssertionError naming `message` after `timeout` s.

    Timeouts here mean "stuck", not "slow": they are generous on purpose."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def answers(url: str, statuses: Container[int] = (200, 503), **request: object) -> bool:
    """The server at `url` answers with one of `statuses` (not yet listening: False)."""
    try:
        return httpx.get(url, timeout=2, **request).status_code in statuses  # type: ignore[arg-type]
    except httpx.HTTPError:
        return False


def wait_until_serving(
    url: str, timeout: float = 60, statuses: Container[int] = (200, 503), **request: object
) -> None:
    wait_for(lambda: answers(url, statuses, **request), timeout, f"{url} to answer")
