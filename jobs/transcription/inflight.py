"""The tasks this worker process is transcribing right now, for its heartbeat.

A batch holds tasks that RQ knows nothing about (their jobs were taken off the queue when the
batch claimed them); the heartbeat names them so the reconciler never takes them for lost.
"""

import threading
from collections.abc import Callable, Iterable

_lock = threading.Lock()
_tasks: set[str] = set()
_listeners: list[Callable[[], None]] = []


def add(task_ids: Iterable[str]) -> None:
    with _lock:
        _tasks.update(task_ids)
    _notify()


def remove(task_ids: Iterable[str]) -> None:
    with _lock:
        _tasks.difference_update(task_ids)
    _notify()


def current() -> list[str]:
    with _lock:
        return sorted(_tasks)


def on_change(listener: Callable[[], None]) -> None:
    """`listener` runs (in the caller's thread) whenever the set changes."""
    _listeners.append(listener)


def stop_listening(listener: Callable[[], None]) -> None:
    """A heartbeat that stopped is told no more (a process may run several workers in turn)."""
    if listener in _listeners:
        _listeners.remove(listener)


def _notify() -> None:
    for listener in list(_listeners):
        listener()
