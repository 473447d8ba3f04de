"""The history log's lines for a time range, from Postgres (the record), whatever the number of
worker hosts: `python scripts/history_export.py --since 2026-11-01 [--until 2026-12-01]
[--out history.jsonl]`.

Each worker host appends to its own STORAGE_PATH/logs/asr_history.jsonl; this writes the
same lines (jobs/history.py's `history_line`) for every task that ended `done` or `failed`
with `since <= finished_at < until`, oldest first, as one file. Times without a zone are UTC.
Tasks removed by TRANSCRIPT_MAX_AGE are no longer in the record, so not in the export.
"""

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from app.config import get_settings
from jobs.history import LOGGED_STATUSES, history_line
from models import Task
from models.db import session_scope


def moment(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time (e.g. 2026-11-01 or 2026-11-01T12:00+01:00)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def history_lines(
    database_url: str, since: datetime | None, until: datetime | None
) -> Iterator[str]:
    query = select(Task).where(Task.status.in_(LOGGED_STATUSES), Task.finished_at.is_not(None))
    if since is not None:
        query = query.where(Task.finished_at >= since)
    if until is not None:
        query = query.where(Task.finished_at < until)
    query = query.order_by(Task.finished_at, Task.id).execution_options(yield_per=500)
    with session_scope(database_url) as session:
        for task in session.scalars(query):
            yield json.dumps(history_line(task), ensure_ascii=False) + "\n"


def export(out: TextIO, since: datetime | None, until: datetime | None) -> int:
    count = 0
    for line in history_lines(get_settings().DATABASE_URL, since, until):
        out.write(line)
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--since", type=moment, help="first finish time included (default: all)")
    parser.add_argument("--until", type=moment, help="finish times before this (default: now)")
    parser.add_argument("--out", type=Path, help="write here instead of standard output")
    args = parser.parse_args(argv)
    if args.since and args.until and args.until <= args.since:
        parser.error("--until must be later than --since")
    if args.out is None:
        count = export(sys.stdout, args.since, args.until)
    else:
        with args.out.open("w", encoding="utf-8") as out:
            count = export(out, args.since, args.until)
    print(f"history_export: {count} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
