"""client metadata and idempotency keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_task_api_key_id_idempotency_key"


def upgrade() -> None:
    op.add_column("task", sa.Column("client_metadata", postgresql.JSONB(), nullable=True))
    op.add_column("task", sa.Column("idempotency_key", sa.String(255), nullable=True))
    op.create_index(
        INDEX, "task", ["api_key_id", "idempotency_key"], unique=True,
        postgresql_nulls_not_distinct=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index(INDEX, table_name="task")
    op.drop_column("task", "idempotency_key")
    op.drop_column("task", "client_metadata")
