"""progress in tenths of a percent

Whole percents of a multi-hour recording are minutes of audio apart, so progress could stand
still for longer than a client should wait to see it move.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The task-events trigger (0008) watches progress; Postgres will not change the type of a
# column a trigger names, so the trigger steps aside meanwhile.
DROP_TRIGGER = "DROP TRIGGER task_events_update ON task"
CREATE_TRIGGER = (
    "CREATE TRIGGER task_events_update AFTER UPDATE ON task FOR EACH ROW "
    "WHEN (OLD.status IS DISTINCT FROM NEW.status "
    "OR OLD.progress IS DISTINCT FROM NEW.progress) "
    "EXECUTE FUNCTION notify_task_event()"
)


def upgrade() -> None:
    op.execute(DROP_TRIGGER)
    op.alter_column("task", "progress", type_=sa.Float(), existing_type=sa.Integer(),
                    existing_nullable=False)  # fmt: skip
    op.execute(CREATE_TRIGGER)


def downgrade() -> None:
    op.execute(DROP_TRIGGER)
    op.alter_column(
        "task", "progress", type_=sa.Integer(), existing_type=sa.Float(),
        existing_nullable=False, postgresql_using="floor(progress)::integer",
    )  # fmt: skip
    op.execute(CREATE_TRIGGER)
