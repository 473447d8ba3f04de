"""A recording's length is measured by the service, never taken from its header: a WebM with
no Duration element or an edited one is measured at submit, and one whose timestamps were
edited too is stopped by the worker, which counts what it decodes."""

import functools
import io
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings, get_settings
from app.main import create_app
from jobs.transcription import batch_job, batching
from storage import get_storage
from tests.utils.api import result, submit
from tests.utils.audio import JFK_LINE, audio_file, normalize, silent_webm
from tests.utils.logs import logged
from tests.utils.records import assert_nothing_stored, task_row

SR = 16000
LIMIT_SECONDS = 60
# Two minutes of voice-note silence, written three ways a header can mislead.
SHAPES = {
    "no duration": {"streamed": True},
    "edited duration": {"header_seconds": 10.0},
    "edited timestamps": {"header_seconds": 6.0, "timestamp_scale": 0.05},  # say 6 s, hold 120
}


@pytest.fixture
def limited(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API, and the workers the test runs, with MAX_AUDIO_SECONDS=60."""
    monkeypatch.setenv("MAX_AUDIO_SECONDS", str(LIMIT_SECONDS))
    get_settings.cache_clear()
    with TestClient(create_app(get_settings())) as client:
        yield client


@functools.cache
def note_bytes(shape: str) -> bytes:
    return silent_webm(120, **SHAPES[shape])  # type: ignore[arg-type]


def note(tmp_path: Path, shape: str) -> Path:
    path = tmp_path / "note.webm"
    path.write_bytes(note_bytes(shape))
    return path


@pytest.mark.parametrize("shape", ["no duration", "edited duration"])
def test_a_webm_whose_header_misstates_its_length_is_measured_at_submit(
    client, settings: Settings, tmp_path: Path, shape: str
):
    task_id = submit(client, note(tmp_path, shape)).json()["task_id"]
    assert task_row(settings, task_id).duration_seconds == pytest.approx(120, abs=0.5)


@pytest.mark.parametrize("shape", ["no duration", "edited duration"])
def test_a_webm_longer_than_the_limit_is_413_whatever_its_header_says(
    limited: TestClient, settings: Settings, tmp_path: Path, shape: str
):
    response = submit(limited, note(tmp_path, shape))
    assert response.status_code == 413, response.text
    assert "MAX_AUDIO_SECONDS" in response.json()["detail"]
    assert_nothing_stored(settings)


def test_a_recording_that_decodes_past_the_limit_fails_with_the_reason(
    limited: TestClient, run_worker, settings: Settings, tmp_path: Path
):
    """Its timestamps say 6 s: submit takes it. Alone, the worker stops decoding at the limit."""
    task_id = submit(limited, note(tmp_path, "edited timestamps")).json()["task_id"]
    assert task_row(settings, task_id).duration_seconds == pytest.approx(6, abs=0.5)
    run_worker()
    body = result(limited, task_id)
    assert body["status"] == "failed"
    assert body["error"] == "the recording lasts longer than the limit of 60 s (MAX_AUDIO_SECONDS)"


def test_a_batch_hands_a_clip_that_decodes_long_to_the_single_path(
    limited: TestClient, run_worker, settings: Settings, tmp_path: Path
):
    """Taken into a batch as a 6-s clip, it is read no further than a batch clip can be, then
    transcribed alone, where the limit stops it; its companion is done in the batch."""
    long = submit(limited, note(tmp_path, "edited timestamps")).json()["task_id"]
    short = submit(limited, audio_file("jfk.flac")).json()["task_id"]
    with logged() as messages:
        run_worker()
    log = "\n".join(messages)
    assert "batch of 2: 1 clips done together" in log and "1 one at a time" in log, log[-3000:]
    assert result(limited, long)["error"].startswith("the recording lasts longer than the limit")
    assert JFK_LINE in normalize(result(limited, short)["text"])


def test_reading_a_batch_clip_stops_at_the_batch_clip_limit(settings: Settings):
    """A clip whose stored length was wrong is not decoded whole into memory: read_clip gives
    it up once it passes a batch clip's length, holding no more than that of it."""
    key = f"{uuid.uuid4()}.webm"
    get_storage(settings).save(key, io.BytesIO(note_bytes("edited duration")))
    member = batch_job.BatchMember(uuid.uuid4(), key, 10.0)
    tracemalloc.start()
    try:
        samples = batch_job.read_clip(settings, member)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        get_storage(settings).delete(key)
    assert samples is None
    # int16 blocks up to a batch clip and one block more; all 120 s as float32 is 7.7 MB.
    assert peak < 2 * batching.MAX_CLIP_SECONDS * SR * 2, peak
