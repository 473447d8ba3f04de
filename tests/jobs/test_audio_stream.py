"""Decoding ahead: the next piece is produced in a thread while the current one is used."""

import threading
import time
from collections.abc import Iterator
from contextlib import closing

import pytest

from jobs.audio_stream import prefetched


def slow_numbers(count: int, seconds: float, produced: list[int]) -> Iterator[int]:
    for number in range(count):
        time.sleep(seconds)
        produced.append(number)
        yield number


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "audio-prefetch"]


def test_items_arrive_in_order_and_the_next_is_ready_while_one_is_used():
    produced: list[int] = []
    seen = []
    for number in prefetched(slow_numbers(4, 0.2, produced)):
        time.sleep(0.4)  # "transcribing": meanwhile the next item is decoded
        seen.append((number, len(produced)))
    assert [number for number, _ in seen] == [0, 1, 2, 3]
    # While item n was used, item n+1 had already been produced (except after the last).
    assert [count for _, count in seen] == [2, 3, 4, 4]
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
    with closing(prefetched(slow_numbers(100, 0.05, produced))) as items:
        assert next(items) == 0
    time.sleep(0.3)
    assert prefetch_threads() == []
    assert len(produced) <= 2  # the item in hand and the next, nothing further
