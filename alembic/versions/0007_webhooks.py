"""webhook callback and delivery state

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task", sa.Column("callback_url", sa.String(2000), nullable=True))
    op.add_column("task", sa.Column("callback_secret", sa.String(255), nullable=True))
    op.add_column(
        "task",
        sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("task", sa.Column("webhook_last_status", sa.String(255), nullable=True))
    op.add_column(
        "task", sa.Column("webhook_delivered_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    for column in (
        "webhook_delivered_at", "webhook_last_status", "webhook_attempts",
        "callback_secret", "callback_url",
    ):  # fmt: skip
        op.drop_column("task", column)
