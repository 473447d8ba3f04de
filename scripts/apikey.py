"""Manage API keys:

    python scripts/apikey.py create NAME [--scopes submit,read] [--admin]
    python scripts/apikey.py list
    python scripts/apikey.py revoke ID_OR_PREFIX

A new key is printed once; only its hash is stored.
"""

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import String, cast, or_, select
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import get_settings
from models import ApiKey, Scope
from models.api_key import create_key
from models.db import session_scope


def parse_scopes(text: str) -> list[Scope]:
    try:
        return [Scope(s.strip()) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"scopes are {', '.join(s.value for s in Scope)}, comma-separated"
        ) from None


def create(name: str, scopes: list[Scope]) -> None:
    with session_scope(get_settings().DATABASE_URL) as session:
        row, plain = create_key(session, name, scopes)
        print(f"created key {row.id} ({name}, scopes: {', '.join(row.scopes)})")
    print(f"\n  {plain}\n\nStore it now: it is not shown again.")


def list_keys() -> None:
    with session_scope(get_settings().DATABASE_URL) as session:
        keys = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
        print(f"{'id':36}  {'prefix':12}  {'name':20}  {'scopes':20}  created           "
              "last used         revoked")  # fmt: skip
        for key in keys:
            print(f"{key.id}  {key.visible_prefix:12}  {key.name[:20]:20}  "
                  f"{','.join(key.scopes):20}  {_when(key.created_at)}  "
                  f"{_when(key.last_used_at)}  {_when(key.revoked_at)}")  # fmt: skip


def revoke(ident: str) -> int:
    with session_scope(get_settings().DATABASE_URL) as session:
        matches = session.scalars(select(ApiKey).where(or_(
            cast(ApiKey.id, String).startswith(ident), ApiKey.visible_prefix.startswith(ident)
        ))).all()  # fmt: skip
        if len(matches) != 1:
            print(f"error: {len(matches)} keys match {ident!r}; give more of the id",
                  file=sys.stderr)  # fmt: skip
            return 1
        matches[0].revoked_at = datetime.now(UTC)
        print(f"revoked key {matches[0].id} ({matches[0].name})")
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-".ljust(16)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Manage API keys.")
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("create", help="create a key and print it once")
    new.add_argument("name")
    new.add_argument("--scopes", type=parse_scopes, default=[Scope.SUBMIT, Scope.READ])
    new.add_argument("--admin", action="store_true", help="every scope, every task")
    commands.add_parser("list", help="list keys (never the keys themselves)")
    gone = commands.add_parser("revoke", help="revoke a key by id or prefix")
    gone.add_argument("ident")
    args = parser.parse_args(argv)
    try:
        if args.command == "create":
            create(args.name, list(Scope) if args.admin else args.scopes)
        elif args.command == "list":
            list_keys()
        else:
            return revoke(args.ident)
    except OperationalError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        print(f"error: {reason}\nThe database is DATABASE_URL, else the embedded one of "
              f"scripts/serve for STORAGE_PATH={get_settings().STORAGE_PATH}: is it running "
              "(or was it given another STORAGE_PATH)?", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
