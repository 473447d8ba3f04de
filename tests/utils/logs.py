"""What the service logged while a block ran (in this process: the API under TestClient, and
the workers of tests/utils/workers.py)."""

from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger


@contextmanager
def logged(level: str = "INFO") -> Iterator[list[str]]:
    """Every message at `level` or above, as "LEVEL message", logged while the block runs."""
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(f"{m.record['level'].name} {m.record['message']}"),
                      level=level)  # fmt: skip
    try:
        yield messages
    finally:
        logger.remove(sink)
