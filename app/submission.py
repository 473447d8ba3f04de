"""Turning a recording into a queued task: store it, insert the row, enqueue the job. Shared
by every way in (the submit route, the OpenAI-compatible routes, the Telegram adapter), so a
recording is checked, deduplicated and queued the same way whoever sent it."""

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request, UploadFile
from loguru import logger
from rq import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.async_db import AsyncDatabase
from app.auth import Caller
from app.callbacks import CallbackRequest
from app.config import Settings
from app.dispatch import dispatch
from app.reuse import DEDUPE_HEADER, REPLAY_HEADER, commit_new_task, find_finished_twin
from app.schemas import TaskOptions
from app.uploads import StoredUpload, store_upload
from models import Task
from models.task import RECORDING_SEQ
from storage import Storage


@dataclass(frozen=True)
class Submitted:
    task: Task
    # None for a new task; otherwise the response header that says why an existing task
    # came back (a replayed Idempotency-Key, or a DEDUPE twin).
    reused: str | None = None


def queue_recording(
    session: Session, queue: Queue, storage: Storage, settings: Settings, caller: Caller,
    upload: UploadFile, options: TaskOptions, model: str, *,
    client_metadata: dict[str, Any] | None = None, idempotency_key: str | None = None,
    callback: CallbackRequest | None = None, seq: int | None = None,
) -> Submitted:  # fmt: skip
    """Store `upload` and queue it, as recording number `seq` (drawn here when None). Raises
    a 4xx AppError for a recording we cannot take (nothing is kept then) and
    ServiceUnavailable when Redis refuses the job."""
    task_id = uuid.uuid4()
    if seq is None:
        seq = draw_recording_seq(session)
    stored = store_upload(upload, storage, task_id, seq, settings.max_upload_bytes,
                          settings.MAX_AUDIO_SECONDS)  # fmt: skip
    task = Task(
        id=task_id, seq=seq, model=model, api_key_id=caller.key_id,
        **upload_columns(stored), client_metadata=client_metadata,
        idempotency_key=idempotency_key, **options.model_dump(exclude={"beam_size"}),
        beam_size=options.beam_size or settings.WHISPER_DEFAULT_BEAM_SIZE,
        callback_url=callback and callback.url, callback_secret=callback and callback.secret,
    )  # fmt: skip
    if settings.DEDUPE and (twin := find_finished_twin(session, caller, task)) is not None:
        storage.delete(stored.key)
        logger.info("task {}: returned again for identical audio and options", twin.id)
        return Submitted(twin, DEDUPE_HEADER)
    saved = commit_new_task(session, storage, task, caller)
    if saved is not task:  # a concurrent submit with the same Idempotency-Key won
        return Submitted(saved, REPLAY_HEADER)
    dispatch(session, queue, task, settings)
    logger.info(
        "task {}: queued {} ({}, {} bytes, {} s)",
        task_id, stored.filename, stored.media.container, stored.size_bytes,
        stored.media.duration_seconds,
    )  # fmt: skip
    return Submitted(task)


def upload_columns(stored: StoredUpload) -> dict[str, Any]:
    """The task columns that describe the stored recording."""
    return {
        "filename": stored.filename,
        "audio_key": stored.key,
        "content_type": stored.media.content_type,
        "size_bytes": stored.size_bytes,
        "sha256": stored.sha256,
        "duration_seconds": stored.media.duration_seconds,
    }


NEXT_RECORDING_SEQ = select(RECORDING_SEQ.next_value().label("seq"))


async def next_recording_seq(request: Request) -> int:
    """A dependency: the next recording number, drawn on the event loop (app/async_db.py)
    before the route's thread starts. Through the ORM session in that thread it took 2 ms
    of a 25 ms submit (docs/performance-notes.md)."""
    db: AsyncDatabase = request.app.state.db
    row = await db.fetch_one(NEXT_RECORDING_SEQ)
    assert row is not None
    return int(row["seq"])


def draw_recording_seq(session: Session) -> int:
    """The next recording number. The read transaction ends at once (a sequence value
    survives a rollback) so no transaction stays open while the upload is copied."""
    seq = session.scalar(RECORDING_SEQ.next_value().select())
    session.rollback()
    assert seq is not None
    return seq
