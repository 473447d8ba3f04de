"""Decoding audio a piece at a time, so memory does not grow with the length of a recording.

A whole decoded hour is 230 MB of float32 samples (16 kHz) and faster-whisper's features
for it several times that while they are computed; pieces of AUDIO_CHUNK_SECONDS keep the
worker's memory flat for files of any length. Pieces are cut at the quietest moment near
the boundary, so words are not split.
"""

import itertools
import queue
import threading
from collections.abc import Generator, Iterator
from contextlib import closing
from typing import Any, BinaryIO, TypeVar

import av
import numpy as np

SAMPLE_RATE = 16000
# Where to look for a quiet cut: this many seconds either side of the nominal boundary.
CUT_SEARCH_SECONDS = 15
CUT_WINDOW_SECONDS = 0.1
# A recording measured at upload as just within MAX_AUDIO_SECONDS may decode a little longer
# (encoder delay, padding, a last frame the timestamps do not count).
LENGTH_SLACK_SECONDS = 1.0

T = TypeVar("T")


class RecordingTooLong(Exception):
    """Decoding went past the longest recording the service takes. The length the upload
    was measured at is a container's word (timestamps can be edited); decoded samples are
    what is actually transcribed, so the worker counts those too."""

    def __init__(self, max_seconds: float) -> None:
        super().__init__(
            f"the recording lasts longer than the limit of {max_seconds:g} s (MAX_AUDIO_SECONDS)"
        )


def duration_seconds(audio: BinaryIO) -> float | None:
    """The container's idea of the duration (for progress); rewinds `audio`."""
    audio.seek(0)
    try:
        with av.open(audio, mode="r", metadata_errors="ignore") as container:
            return container.duration / av.time_base if container.duration else None
    finally:
        audio.seek(0)


def pieces(
    audio: BinaryIO, piece_seconds: float, max_seconds: float = 0
) -> Iterator[tuple[float, np.ndarray]]:
    """(offset in seconds, float32 mono 16 kHz samples), piece by piece. Raises
    RecordingTooLong once more than `max_seconds` (0: no limit) have been decoded.

    Decoded exactly as faster-whisper's `decode_audio` does (FFmpeg resampling to s16, then
    scaled), so a file shorter than one piece gives identical samples.
    """
    target = int(piece_seconds * SAMPLE_RATE)
    search = int(CUT_SEARCH_SECONDS * SAMPLE_RATE)
    limit = int((max_seconds + LENGTH_SLACK_SECONDS) * SAMPLE_RATE) if max_seconds else 0
    buffer: list[np.ndarray] = []
    buffered, offset = 0, 0
    for block in _decoded_blocks(audio):
        buffer.append(block)
        buffered += len(block)
        if limit and offset + buffered > limit:
            raise RecordingTooLong(max_seconds)
        while buffered >= target + search:
            samples = np.concatenate(buffer)
            cut = quietest_cut(samples, target, search)
            yield offset / SAMPLE_RATE, samples[:cut].astype(np.float32) / 32768.0
            rest = samples[cut:]
            buffer, buffered, offset = [rest], len(rest), offset + cut
    if buffered:
        yield offset / SAMPLE_RATE, np.concatenate(buffer).astype(np.float32) / 32768.0


def whole_if_within(audio: BinaryIO, max_seconds: float) -> np.ndarray | None:
    """All of `audio` as `pieces` decodes a short file, or None as soon as decoding passes
    `max_seconds`: the rest is neither decoded nor held, whatever the file's header claims."""
    limit = int(max_seconds * SAMPLE_RATE)
    blocks: list[np.ndarray] = []
    decoded = 0
    with closing(_decoded_blocks(audio)) as decoding:
        for block in decoding:
            decoded += len(block)
            if decoded > limit:
                return None
            blocks.append(block)
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(blocks).astype(np.float32) / 32768.0


def prefetched(items: Iterator[T]) -> Generator[T, None, None]:
    """`items`, produced one ahead in a thread: the next piece is decoded while the current
    one is transcribed, so there is no decoding pause at a piece boundary. At most two
    pieces are held: the one in use and the next. An exception in the producer is raised
    here, in order; closing this iterator stops the producer before its next piece."""
    handoff: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    may_produce = threading.Semaphore(1)  # released each time the consumer takes an item
    stopped = threading.Event()

    def produce() -> None:
        try:
            while True:
                while not may_produce.acquire(timeout=0.2):
                    if stopped.is_set():
                        return
                if stopped.is_set():
                    return
                item = next(items, handoff)  # the queue itself marks the end
                if item is handoff:
                    handoff.put(("end", None))
                    return
                handoff.put(("item", item))
        except BaseException as exc:  # handed to the consumer, raised there
            handoff.put(("error", exc))

    producer = threading.Thread(target=produce, name="audio-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            may_produce.release()
            yield value
    finally:
        stopped.set()
        producer.join()


def quietest_cut(samples: np.ndarray, target: int, search: int) -> int:
    """The middle of the quietest 0.1 s within `search` samples of `target`."""
    window = int(CUT_WINDOW_SECONDS * SAMPLE_RATE)
    start = max(window, target - search)
    region = samples[start : target + search].astype(np.float32)
    count = len(region) // window
    if count == 0:
        return target
    energy = np.square(region[: count * window].reshape(count, window)).mean(axis=1)
    return start + int(np.argmin(energy)) * window + window // 2


def _decoded_blocks(audio: BinaryIO) -> Generator[np.ndarray, None, None]:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    audio.seek(0)
    with av.open(audio, mode="r", metadata_errors="ignore") as container:
        fifo = av.AudioFifo()
        for frame in itertools.chain(_valid_frames(container.decode(audio=0)), [None]):
            if frame is not None:
                frame.pts = None  # FFmpeg's timestamp checks trip over cut recordings
                fifo.write(frame)
                if fifo.samples < 500_000:
                    continue
            grouped = fifo.read() if fifo.samples else None
            if grouped is None and frame is not None:
                continue
            for resampled in resampler.resample(grouped):
                yield resampled.to_ndarray().reshape(-1)
            if frame is None and grouped is not None:
                for resampled in resampler.resample(None):
                    yield resampled.to_ndarray().reshape(-1)


def _valid_frames(frames: Any) -> Iterator[av.AudioFrame]:
    """Skip frames FFmpeg cannot decode (damage in the middle of a file), keep the rest."""
    iterator = iter(frames)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue
