"""telegram reply state

A task from Telegram owes its chat a reply once it ends; these columns record how far the
reply got, so the reconciler can re-create one that Redis lost. Tasks that had ended before
this revision count as answered: nothing recorded whether they were.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MARK_ENDED_REPLIES = (
    "UPDATE task SET telegram_reply_ended_at = coalesce(finished_at, now()) "
    "WHERE status IN ('done', 'failed', 'canceled') AND client_metadata ? 'telegram'"
)


def upgrade() -> None:
    for name in ("telegram_reply_attempts", "telegram_reply_sent"):
        op.add_column("task", sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    op.add_column(
        "task", sa.Column("telegram_reply_ended_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(MARK_ENDED_REPLIES)


def downgrade() -> None:
    for name in ("telegram_reply_ended_at", "telegram_reply_sent", "telegram_reply_attempts"):
        op.drop_column("task", name)
