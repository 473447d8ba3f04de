"""Cross-job batching: the job of one short task also transcribes other queued short tasks.

The worker that takes a short task's job claims up to BATCH_MAX_JOBS - 1 more queued short
tasks with the same options (oldest first, `FOR UPDATE SKIP LOCKED`, so two workers never
claim the same task), takes their jobs off the queue, and transcribes all of them in one
batch (batching.py). Each task keeps its own row, result, language, progress, failure
and history line, and is finished and announced as soon as its own clip is done.

Crash safety is the single job's: a claimed task is `processing` under this worker's name and
listed in its heartbeat; if the worker dies, the reconciler finds it and queues it again.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from loguru import logger
from rq import get_current_job
from sqlalchemy import select

from app.config import Settings
from jobs.queues import connect_redis, model_queue, remove_job
from jobs.transcription import audio_stream, batching, engine, inflight, seeding
from jobs.transcription.checkpoint import (
    BatchCheckpoint,
    Checkpoint,
    TaskCanceled,
    TranscriptionTimeout,
    WorkerStopping,
)
from jobs.transcription.outcome import failure_reason, finish_done, finish_failed, put_back
from jobs.transcription.retry import with_retries
from models import Task, TaskStatus
from models.db import session_scope
from models.task import OPTION_COLUMNS
from storage import StorageUnavailable, get_storage


@dataclass(frozen=True)
class BatchMember:
    task_id: uuid.UUID
    audio_key: str
    duration_seconds: float | None


def batchable(
    settings: Settings, options: engine.TranscriptionOptions, duration: float | None
) -> bool:
    """Short, and with options the batch decoder reproduces exactly. Word timestamps, the
    VAD filter and a fixed temperature above 0 (every decode sampled, which only the
    one-at-a-time path seeds per task) take the one-at-a-time path."""
    return (
        settings.BATCH_MAX_JOBS > 1
        and duration is not None
        and 0 < duration <= batching.MAX_CLIP_SECONDS
        and settings.WHISPER_BATCH_SIZE == 0
        and not options.word_timestamps
        and not options.vad_filter
        and not options.temperature
    )


def claim_companions(
    settings: Settings, first: uuid.UUID, options: engine.TranscriptionOptions, worker_name: str
) -> list[BatchMember]:
    """Mark up to BATCH_MAX_JOBS - 1 more queued short tasks with the same model and options
    `processing` for this worker, oldest first."""
    same_options = [
        getattr(Task, name).is_(None) if getattr(options, name) is None
        else getattr(Task, name) == getattr(options, name)
        for name in OPTION_COLUMNS
    ]  # fmt: skip
    with session_scope(settings.DATABASE_URL) as session:
        tasks = session.scalars(
            select(Task)
            .where(
                Task.status == TaskStatus.QUEUED,
                Task.id != first,
                Task.audio_key.is_not(None),
                Task.duration_seconds > 0,
                Task.duration_seconds <= batching.MAX_CLIP_SECONDS,
                Task.model == select(Task.model).where(Task.id == first).scalar_subquery(),
                *same_options,
            )
            .order_by(Task.seq)
            .limit(settings.BATCH_MAX_JOBS - 1)
            .with_for_update(skip_locked=True)
        ).all()
        now = datetime.now(UTC)
        for task in tasks:
            task.status = TaskStatus.PROCESSING
            task.started_at = now
            task.attempts += 1
            task.progress = 0
            task.error = None
            task.worker_name = worker_name
        members = [BatchMember(t.id, t.audio_key or "", t.duration_seconds) for t in tasks]
    if members:
        # Known to the heartbeat before anything else can happen to them.
        inflight.add(str(m.task_id) for m in members)
        drop_jobs(settings, [m.task_id for m in members])
    return members


def drop_jobs(settings: Settings, task_ids: list[uuid.UUID]) -> None:
    """Take the companions' jobs off the queue. Best effort: a job left behind finds its task
    no longer `queued` and does nothing."""
    job = get_current_job()
    redis = job.connection if job is not None else connect_redis(settings.REDIS_URL)
    queue = model_queue(redis, settings, settings.worker_model)
    for task_id in task_ids:
        try:
            remove_job(queue, task_id)
        except Exception as exc:
            logger.warning("task {}: job not taken off the queue: {}", task_id, exc)


def run_batch(
    settings: Settings, members: list[BatchMember], options: engine.TranscriptionOptions
) -> list[BaseException | None]:
    """Transcribe the members together and record every outcome; returns each member's
    failure (None when done or canceled). The caller has claimed every member."""
    started = time.monotonic()
    ids = [str(m.task_id) for m in members]
    inflight.add(ids)
    try:
        return _run(settings, members, options, started)
    finally:
        inflight.remove(ids)


def _run(
    settings: Settings,
    members: list[BatchMember],
    options: engine.TranscriptionOptions,
    started: float,
) -> list[BaseException | None]:
    model = engine.get_model(settings)
    outcomes: list[BaseException | None] = [None] * len(members)
    clips, alone = read_clips(settings, members, outcomes, started)
    short = list(clips)
    finished: set[int] = set()
    total_audio = sum(len(samples) for samples in clips.values()) / audio_stream.SAMPLE_RATE

    def finish(index: int, transcript: engine.Transcript) -> None:
        n = short[index]
        # Charged its share, by length, of the batch's time until its clip was done.
        share = (time.monotonic() - started) * transcript.duration / (total_audio or 1.0)
        with_retries(finish_done, settings, members[n].task_id, transcript, share, model.name)
        finished.add(n)

    checkpoint = BatchCheckpoint(settings, [members[n].task_id for n in short], started)
    stats = batching.BatchStats()
    try:
        transcripts = batching.transcribe_clips(
            model, [clips[n] for n in short], options, settings.BATCH_MAX_JOBS,
            settings.BATCH_PACKING, checkpoint, stats, finish,
        )  # fmt: skip
        # Their windows needed temperature fallback, which is seeded per task only alone.
        alone += [n for n, transcript in zip(short, transcripts, strict=True) if transcript is None]
    except (TranscriptionTimeout, WorkerStopping) as stop:
        unfinished = [members[n] for n in [*short, *alone] if n not in finished]
        stopped(settings, unfinished, stop, time.monotonic() - started)
        raise
    except Exception as exc:
        # The batch itself broke: each clip not yet done gets its own run, and its own outcome.
        logger.opt(exception=exc).warning("batch of {} failed; one at a time", len(short))
        alone += [n for n in short if n not in finished]
    alone.sort()
    for position, n in enumerate(alone):
        try:
            outcomes[n] = transcribe_alone(settings, model, members[n], options)
        except WorkerStopping:
            for rest in alone[position:]:
                with_retries(put_back, settings, members[rest].task_id)
            raise
    logger.info(
        "batch of {}: {} clips done together in {:.1f} s ({} streams, {} steps, {} "
        "re-decoded alone after the packing check), {} one at a time",
        len(members), len(finished), stats.seconds, stats.streams, stats.steps,
        stats.rechecked_clips, len(alone),
    )  # fmt: skip
    return outcomes


def read_clips(
    settings: Settings,
    members: list[BatchMember],
    outcomes: list[BaseException | None],
    started: float,
) -> tuple[dict[int, np.ndarray], list[int]]:
    """The members' clips by position, and the positions of those too long for the batch;
    a clip that cannot be read fails alone (its outcome set here)."""
    clips: dict[int, np.ndarray] = {}
    too_long: list[int] = []
    for n, member in enumerate(members):
        try:
            samples = read_clip(settings, member)
        except Exception as exc:  # this clip's problem only
            outcomes[n] = record_failure(settings, member.task_id, exc,
                                         time.monotonic() - started)  # fmt: skip
            continue
        if samples is None:
            too_long.append(n)
        else:
            clips[n] = samples
    return clips, too_long


def read_clip(settings: Settings, member: BatchMember) -> np.ndarray | None:
    """The clip's samples; None when it decodes longer than a batch clip (its measured length
    was wrong, e.g. edited timestamps): it is transcribed alone after the batch, piece by
    piece, and no more of it than a batch clip is ever held here."""
    with get_storage(settings).open(member.audio_key) as audio:
        return audio_stream.whole_if_within(audio, batching.MAX_CLIP_SECONDS)


def transcribe_alone(
    settings: Settings,
    model: engine.LoadedModel,
    member: BatchMember,
    options: engine.TranscriptionOptions,
) -> BaseException | None:
    """The one-at-a-time path, for a clip the batch could not take."""
    started = time.monotonic()
    try:
        with get_storage(settings).open(member.audio_key) as audio:
            transcript = engine.transcribe(
                model, audio, options, Checkpoint(settings, member.task_id, started),
                settings.AUDIO_PIECE_SECONDS, max_seconds=settings.MAX_AUDIO_SECONDS,
                seed=seeding.task_seed(settings, member.task_id),
            )  # fmt: skip
        with_retries(finish_done, settings, member.task_id, transcript,
                     time.monotonic() - started, model.name)  # fmt: skip
        return None
    except TaskCanceled:
        return None
    except WorkerStopping:
        raise
    except Exception as exc:
        return record_failure(settings, member.task_id, exc, time.monotonic() - started)


def record_failure(
    settings: Settings, task_id: uuid.UUID, exc: BaseException, elapsed: float
) -> BaseException | None:
    """The task failed with `exc`, or, when the storage is down, waits for it: returns the
    failure, None for a task put back."""
    if isinstance(exc, StorageUnavailable):
        with_retries(put_back, settings, task_id)
        logger.warning("task {}: put back in the queue, storage unavailable: {}", task_id, exc)
        return None
    logger.opt(exception=exc).warning("task {}: failed in a batch", task_id)
    with_retries(finish_failed, settings, task_id, failure_reason(exc, settings), elapsed)
    return exc


def stopped(
    settings: Settings, members: list[BatchMember], reason: BaseException, elapsed: float
) -> None:
    """The batch stopped as a whole: put every task back (worker stopping) or fail it with
    the reason (time limit)."""
    for member in members:
        if isinstance(reason, WorkerStopping):
            with_retries(put_back, settings, member.task_id)
        else:
            record_failure(settings, member.task_id, reason, elapsed)
