"""history logged at

When an ended task's line reached the JSONL history log, so that the reconciler can write
the line of a task whose worker died between committing its end and writing the line. Tasks
that had ended before this revision count as logged: nothing recorded whether they were, and
writing them all again would fill the log with copies.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARK_ENDED_LOGGED = (
    "UPDATE task SET history_logged_at = coalesce(finished_at, now()) "
    "WHERE status IN ('done', 'failed')"
)


def upgrade() -> None:
    op.add_column("task", sa.Column("history_logged_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(MARK_ENDED_LOGGED)


def downgrade() -> None:
    op.drop_column("task", "history_logged_at")
