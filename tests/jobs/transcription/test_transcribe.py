"""The job: idempotent re-runs, the time limit, readable failure reasons."""

import time
import uuid

import av
import pytest
from rq import Queue
from rq.timeouts import JobTimeoutException

from app.config import Settings
from jobs.queues import enqueue_transcription
from jobs.transcription.checkpoint import Checkpoint, TranscriptionTimeout, progress_percent
from jobs.transcription.outcome import failure_reason
from models import Task
from models.db import session_scope
from storage import AudioNotFound
from tests.utils.api import result, submit
from tests.utils.audio import audio_file
from tests.utils.records import history_lines


def test_a_redelivered_job_for_a_done_task_changes_nothing(client, run_worker, redis, settings):
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    run_worker()
    first = result(client, task_id)
    assert first["status"] == "done"

    enqueue_transcription(Queue(settings.QUEUE_NAME, connection=redis), uuid.UUID(task_id),
                          settings, replace=True)  # fmt: skip
    run_worker()

    again = result(client, task_id)
    assert again["status"] == "done" and again["attempts"] == 1
    assert again["timings"] == first["timings"]
    assert len(history_lines(settings)) == 1


def test_a_queued_task_whose_audio_vanished_fails_with_a_history_line(client, run_worker,
                                                                      settings):  # fmt: skip
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    with session_scope(settings.DATABASE_URL) as session:
        session.get(Task, uuid.UUID(task_id)).audio_key = None  # as if removed by hand
    run_worker()

    shown = result(client, task_id)
    assert (shown["status"], shown["error"]) == ("failed", "audio file is no longer stored")
    [line] = history_lines(settings)
    assert line["task_id"] == task_id and line["status"] == "failed"


def test_checkpoint_stops_a_job_past_its_time_limit(settings: Settings):
    limited = settings.model_copy(update={"JOB_TIMEOUT_SECONDS": 10})
    checkpoint = Checkpoint(limited, uuid.uuid4(), started=time.monotonic() - 11)
    with pytest.raises(TranscriptionTimeout, match="timed out after 10 s"):
        checkpoint(5.0, 60.0)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TranscriptionTimeout("timed out after 10 s"), "timed out after 10 s"),
        (JobTimeoutException("Task exceeded maximum timeout value (3600 seconds)"),
         "timed out after 3600 s"),
        (av.error.InvalidDataError(1094995529, "Invalid data found when processing input"),
         "could not decode audio: "),
        (AudioNotFound("x.wav"), "audio file is missing from storage"),
        (RuntimeError("CUDA out of memory"), "transcription failed: RuntimeError: CUDA out"),
        (KeyboardInterrupt(), "worker stopped while processing (KeyboardInterrupt)"),
    ],
)  # fmt: skip
def test_failure_reasons_are_sentences(exc: BaseException, reason: str, settings: Settings):
    assert failure_reason(exc, settings).startswith(reason)


@pytest.mark.parametrize(
    ("fraction", "percent"), [(0.0, 0.0), (0.12345, 12.3), (0.0999, 9.9), (1.0, 99.9)]
)
def test_progress_is_stored_in_tenths_and_100_waits_for_the_result(fraction, percent):
    assert progress_percent(fraction) == percent
