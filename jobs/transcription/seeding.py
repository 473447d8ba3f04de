"""Sampling from a task's own seed, so a retry of the same task gives the same text.

When a window's text looks wrong, faster-whisper decodes it again at rising temperatures, and
those decodes draw random samples. CTranslate2 takes one seed per process
(`ctranslate2.set_random_seed`), but each of a model's worker threads seeds its generator at
its first sampled decode and keeps it: a seed set later changes nothing for a model already
in use. So a task's sampled decodes go to a copy of the model loaded for that task after its
seed is set; the copy's threads are new, and their generators start from the task's seed.
The copy is loaded when the task first samples (most tasks never do) and dropped with it.
"""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ctranslate2
from faster_whisper import WhisperModel
from loguru import logger

from app.config import Settings


def task_seed(settings: Settings, task_id: uuid.UUID) -> int | None:
    """The seed of a task's sampling: the first 4 bytes of its id; None with
    SEEDED_SAMPLING=false (sampling on the loaded model, no copy, no repeatability)."""
    if not settings.SEEDED_SAMPLING:
        return None
    return int.from_bytes(task_id.bytes[:4], "big")


class SeededSampling:
    """Stands in for the model's CTranslate2 `Whisper` while one task runs: beam search and
    greedy decoding (no randomness) stay on the model, sampled decodes go to the task's copy."""

    def __init__(
        self, model: Any, load_copy: Callable[[], ctranslate2.models.Whisper], seed: int
    ) -> None:
        self.model = model
        self.load_copy = load_copy
        self.seed = seed
        self.copy: ctranslate2.models.Whisper | None = None

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("sampling_topk", 1) == 1:  # CTranslate2's default: always the best token
            return self.model.generate(*args, **kwargs)
        if self.copy is None:
            # Read by the copy's worker thread at its first sampled decode, just below.
            ctranslate2.set_random_seed(self.seed)
            self.copy = self.load_copy()
            logger.info("sampling from seed {} on a fresh copy of the model", self.seed)
        return self.copy.generate(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


@contextmanager
def seeded(
    whisper: WhisperModel, seed: int | None, load_copy: Callable[[], ctranslate2.models.Whisper]
) -> Iterator[None]:
    """Within the block, `whisper` samples from `seed` (None: CTranslate2's own generator).
    The model is shared by every task of the process, which runs one task at a time."""
    if seed is None:
        yield
        return
    model = whisper.model
    whisper.model = SeededSampling(model, load_copy, seed)
    try:
        yield
    finally:
        whisper.model = model
