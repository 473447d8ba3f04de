"""Small helpers shared by tests."""

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ../shared/audio beside the checkout (CI has it too); SHARED_AUDIO_PATH overrides.
AUDIO = Path(os.environ.get("SHARED_AUDIO_PATH", ROOT.parent / "shared" / "audio"))
JFK_LINE = "ask not what your country can do for you"
# The reference text of the English half (0-30 s) of multilingual.mp3 (../shared/audio/README).
ENGLISH_HALF_TEXT = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this "
    "software and associated documentation files (the Software), to deal in the Software "
    "without restriction, including without limitation the rights to use, copy, modify, merge, "
    "publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons "
    "to whom the Software is furnished to do so, subject to the following conditions: The above "
    "copyright notice and this permission notice shall be included in all copies or "
    "substantial portions of the Software."
)


def audio_file(name: str) -> Path:
    path = AUDIO / name
    if not path.is_file():
        pytest.fail(f"shared test audio missing: {path} (set SHARED_AUDIO_PATH)")
    return path


def normalize(text: str) -> str:
    """Lower case, punctuation removed, single spaces: for comparing transcripts."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def wait_for(condition: Callable[[], object], timeout: float, message: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def run_maintenance_until(condition: Callable[[], object], timeout: float = 60) -> None:
    """Burst maintenance workers (each moves due scheduled jobs first) until `condition`:
    webhook deliveries and Telegram replies, with their retries."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the maintenance jobs did not get there in time"
        done = subprocess.run(
            [sys.executable, "-m", "jobs.maintenance", "--burst"], cwd=ROOT,
            env=os.environ.copy(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        time.sleep(0.3)


def long_recording(
    target: Path, source_name: str = "multilingual.mp3", repeats: int = 4, seconds: float = 0
) -> Path:
    """A WAV of a real recording (its first `seconds` if given) repeated `repeats` times
    (multilingual.mp3 x4: 4 minutes)."""
    import numpy as np
    from faster_whisper import decode_audio

    source = decode_audio(str(audio_file(source_name)))
    write_wav(target, np.tile(source[: int(seconds * 16000)] if seconds else source, repeats))
    return target


def write_wav(target: Path | BinaryIO, samples: Any) -> None:
    """16 kHz mono 16-bit WAV of float samples, to a path or an open binary file."""
    import wave

    import numpy as np

    with wave.open(target if not isinstance(target, Path) else str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
