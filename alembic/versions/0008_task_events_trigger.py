"""notify task changes on the task_events channel

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28

Every insert, delete, and update of status or progress, from any process (API, worker,
reconciler, sweeper), sends a NOTIFY at commit; the API's event stream (app/events.py)
listens. The payload stays small (pg_notify refuses more than 8000 bytes): listeners read
the rest of the row themselves.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFY_FUNCTION = """
CREATE FUNCTION notify_task_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row task%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row := OLD;
    ELSE
        row := NEW;
    END IF;
    PERFORM pg_notify('task_events', json_build_object(
        'task_id', row.id, 'op', lower(TG_OP), 'status', row.status,
        'progress', row.progress, 'api_key_id', row.api_key_id
    )::text);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER task_events_insert_delete AFTER INSERT OR DELETE ON task "
        "FOR EACH ROW EXECUTE FUNCTION notify_task_event()"
    )
    # Webhook bookkeeping, retention and the like change other columns: no event for them.
    op.execute(
        "CREATE TRIGGER task_events_update AFTER UPDATE ON task FOR EACH ROW "
        "WHEN (OLD.status IS DISTINCT FROM NEW.status "
        "OR OLD.progress IS DISTINCT FROM NEW.progress) "
        "EXECUTE FUNCTION notify_task_event()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER task_events_update ON task")
    op.execute("DROP TRIGGER task_events_insert_delete ON task")
    op.execute("DROP FUNCTION notify_task_event()")
