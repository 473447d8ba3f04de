"""bound metadata depth

Submit refuses `metadata` nested more than 32 levels deep since the hardening of issue 16,
but rows stored before could hold hundreds of levels, which pydantic cannot serialize (its
limit is 255): every read of such a task answered 500. Their metadata is replaced with a
note saying why; nothing else of the task changes. The downgrade leaves it so.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

import json
import re
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_DEPTH = 32  # app/client_metadata.py's MAX_METADATA_DEPTH when this was written
REPLACEMENT = {"removed": f"metadata nested more than {MAX_DEPTH} levels deep"}
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def nests_deeper_than(raw: str, limit: int) -> bool:
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(raw):
        if token[0] in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token[0] in ("]", "}"):
            depth -= 1
    return False


def upgrade() -> None:
    connection = op.get_bind()
    # At least two brackets per level: shorter metadata cannot be too deep.
    rows = connection.execute(sa.text(
        "SELECT id, client_metadata::text FROM task "
        "WHERE client_metadata IS NOT NULL AND length(client_metadata::text) > :shortest"
    ), {"shortest": 2 * MAX_DEPTH})  # fmt: skip
    too_deep = [task_id for task_id, raw in rows if nests_deeper_than(raw, MAX_DEPTH)]
    for task_id in too_deep:
        connection.execute(
            sa.text("UPDATE task SET client_metadata = CAST(:note AS jsonb) WHERE id = :id"),
            {"note": json.dumps(REPLACEMENT), "id": task_id},
        )


def downgrade() -> None:
    pass  # the nesting removed is not kept anywhere
