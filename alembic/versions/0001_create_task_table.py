"""create task table

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("recording_seq")))
    op.create_table(
        "task",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "seq",
            sa.BigInteger(),
            server_default=sa.text("nextval('recording_seq')"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("audio_key", sa.String(length=255), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("task", sa.String(length=16), nullable=False),
        sa.Column("word_timestamps", sa.Boolean(), nullable=False),
        sa.Column("hotwords", sa.Text(), nullable=True),
        sa.Column("initial_prompt", sa.Text(), nullable=True),
        sa.Column("vad_filter", sa.Boolean(), nullable=False),
        sa.Column("beam_size", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("detected_language", sa.String(length=16), nullable=True),
        sa.Column("language_probability", sa.Float(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("segments", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker_name", sa.String(length=255), nullable=True),
        sa.Column("processing_seconds", sa.Float(), nullable=True),
        sa.Column("rtf", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'processing', 'done', 'failed', 'canceled')",
            name=op.f("ck_task_status"),
        ),
        sa.CheckConstraint("task IN ('transcribe', 'translate')", name=op.f("ck_task_task")),
        sa.CheckConstraint("progress BETWEEN 0 AND 100", name=op.f("ck_task_progress")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
        sa.UniqueConstraint("seq", name=op.f("uq_task_seq")),
    )
    op.create_index(op.f("ix_task_sha256"), "task", ["sha256"], unique=False)
    op.create_index("ix_task_status_created_at", "task", ["status", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_task_status_created_at", table_name="task")
    op.drop_index(op.f("ix_task_sha256"), table_name="task")
    op.drop_table("task")
    op.execute(sa.schema.DropSequence(sa.Sequence("recording_seq")))
