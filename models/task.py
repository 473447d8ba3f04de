"""The task table: one uploaded recording, its options, its progress and its transcript."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class TaskStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


FINAL_STATUSES = frozenset({TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELED})
# The columns that hold what a client asked of faster-whisper.
OPTION_COLUMNS = (
    "language", "task", "word_timestamps", "hotwords", "initial_prompt", "vad_filter",
    "beam_size", "temperature", "vad_threshold", "vad_min_speech_ms", "vad_min_silence_ms",
    "vad_speech_pad_ms",
)  # fmt: skip

# Numbers recordings in upload order; part of the stored file name. Drawn before the row is
# inserted because the file is written first.
RECORDING_SEQ = Sequence("recording_seq")


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'processing', 'done', 'failed', 'canceled')", name="status"
        ),
        CheckConstraint("task IN ('transcribe', 'translate')", name="task"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
        Index("ix_task_status_created_at", "status", "created_at"),
        # One task per caller and Idempotency-Key. NULLS NOT DISTINCT (Postgres 15): with
        # auth off every caller is the same null key, and a repeated key must still collide.
        Index(
            "uq_task_api_key_id_idempotency_key",
            "api_key_id",
            "idempotency_key",
            unique=True,
            postgresql_nulls_not_distinct=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    # Also the RQ job id.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The key that submitted it (null when auth is off); other keys cannot see it.
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_key.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.QUEUED)
    seq: Mapped[int] = mapped_column(
        BigInteger, RECORDING_SEQ, server_default=RECORDING_SEQ.next_value(), unique=True
    )

    # The upload. `filename` is the client's name, for display only; `audio_key` is ours.
    filename: Mapped[str] = mapped_column(String(255))
    audio_key: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    # Set when retention (or a vanished file) ended the recording; the transcript stays.
    audio_removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    audio_removed_reason: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    duration_seconds: Mapped[float | None] = mapped_column(Float)

    # Requested options, passed to faster-whisper as they are.
    language: Mapped[str | None] = mapped_column(String(16))
    task: Mapped[str] = mapped_column(String(16), default="transcribe")
    word_timestamps: Mapped[bool] = mapped_column(Boolean, default=False)
    hotwords: Mapped[str | None] = mapped_column(Text)
    initial_prompt: Mapped[str | None] = mapped_column(Text)
    vad_filter: Mapped[bool] = mapped_column(Boolean, default=False)
    beam_size: Mapped[int] = mapped_column(Integer, default=5)
    # None: faster-whisper's temperature fallback (0.0, 0.2, ... 1.0).
    temperature: Mapped[float | None] = mapped_column(Float)
    # Silero VAD settings when vad_filter is on; None: faster-whisper's default.
    vad_threshold: Mapped[float | None] = mapped_column(Float)
    vad_min_speech_ms: Mapped[int | None] = mapped_column(Integer)
    vad_min_silence_ms: Mapped[int | None] = mapped_column(Integer)
    vad_speech_pad_ms: Mapped[int | None] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(255))

    # The client's own JSON object (chat and message ids, ...), echoed as `metadata`; the
    # attribute is not named `metadata`, which SQLAlchemy reserves.
    client_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The submit's Idempotency-Key header: a repeat from the same caller gets this task back.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))

    # The result.
    detected_language: Mapped[str | None] = mapped_column(String(16))
    language_probability: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(Text)
    # [{"start", "end", "text", "words": [{"start", "end", "word", "probability"}]?}, ...]
    segments: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)

    # Webhook: POSTed (signed) when the task ends. A null secret means WEBHOOK_SECRET; the
    # secret is never shown in responses or logs.
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    callback_secret: Mapped[str | None] = mapped_column(String(255))
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The last attempt's HTTP status ("200") or error text.
    webhook_last_status: Mapped[str | None] = mapped_column(String(255))
    webhook_delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Telegram reply (tasks whose metadata names a chat): attempts made, messages of the reply
    # already in the chat, and when it was sent in full or given up (null: still owed).
    telegram_reply_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    telegram_reply_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    telegram_reply_ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # When the task's line reached the JSONL history log (jobs/history.py). Null on an ended
    # task: its process died between ending it and writing the line; the reconciler writes it.
    history_logged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Bookkeeping.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0)  # percent, tenths
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker_name: Mapped[str | None] = mapped_column(String(255))
    processing_seconds: Mapped[float | None] = mapped_column(Float)
    # processing_seconds / duration_seconds: below 1 is faster than real time.
    rtf: Mapped[float | None] = mapped_column(Float)

    def options(self) -> dict[str, Any]:
        """The requested transcription options, by name."""
        return {name: getattr(self, name) for name in OPTION_COLUMNS}


def task_snapshot(row: dict[str, Any]) -> Task:
    """A read-only Task holding a row read without the ORM (`app/async_db.py`): the values go
    straight into the instance's `__dict__`, where SQLAlchemy's attributes look first, so it
    reads like any Task at a hundredth of the cost of `Task(**row)` (0.5 µs against 48).
    It has no ORM state: it must never be added to a session or changed."""
    task = Task.__new__(Task)
    task.__dict__.update(row)
    return task
