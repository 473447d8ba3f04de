"""Decoding ahead: the next piece is produced in a thread while the current one is used.
The interleaving is observed, not timed: each step waits for what it expects (10 s: stuck)."""

import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from jobs.transcription.audio_stream import prefetched
from tests.utils.waiting import wait_for


def counted(count: int, produced: list[int]) -> Iterator[int]:
    for number in range(count):
        produced.append(number)
        yield number


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "audio-prefetch"]


def test_items_arrive_in_order_and_the_next_is_ready_while_one_is_used():
    produced: list[int] = []
    seen = []
    for number in prefetched(counted(4, produced)):
        # While item n is in use, item n+1 is produced, and nothing beyond it.
        ahead = min(number + 2, 4)
        wait_for(lambda: len(produced) >= ahead, 10, f"item {ahead - 1} while {number} is used")  # noqa: B023
        seen.append((number, len(produced)))
    assert seen == [(0, 2), (1, 3), (2, 4), (3, 4)]
    assert prefetch_threads() == []


def test_an_error_in_decoding_reaches_the_consumer_after_the_items_before_it():
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("damaged file")

    items = prefetched(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="damaged file"):
        next(items)


def test_stopping_early_stops_the_decoding_thread():
    produced: list[int] = []
    with closing(prefetched(counted(100, produced))) as items:
        assert next(items) == 0
        wait_for(lambda: len(produced) == 2, 10, "the next item")
    assert prefetch_threads() == []  # closing joined it
    assert len(produced) == 2  # the item in hand and the next, nothing further
