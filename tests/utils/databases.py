"""Databases of this test run's own on the shared Postgres server: created by the run, named
after it, and dropped by it (nothing else on the server is touched). Each is marked with the
run's host and process id, so one left by a run that was killed is found and dropped by a
later run on the same host."""

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

# TEST_DATABASE_URL names the server and the prefix of the run's database names.
TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/asr_test"
)
RUN_ID = uuid.uuid4().hex[:8]
# Who made a database or claimed a Redis db: "pytest-run <run id> <host> <pid>".
OWNER = f"pytest-run {RUN_ID} {socket.gethostname()} {os.getpid()}"


def left_by_a_dead_run(owner: str) -> bool:
    """`owner` names a run on this host whose process is gone (killed before its clean-up)."""
    parts = owner.split()
    if len(parts) != 4 or parts[0] != "pytest-run" or parts[2] != socket.gethostname():
        return False
    try:
        os.kill(int(parts[3]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def _server_and_prefix() -> tuple[str, str]:
    server, prefix = TEST_DATABASE_URL.rsplit("/", 1)
    return server, prefix


def _admin_connection() -> psycopg.Connection:
    server, _ = _server_and_prefix()
    return psycopg.connect(server.replace("postgresql+psycopg://", "postgresql://") + "/postgres",
                           autocommit=True)  # fmt: skip


def create_database(suffix: str = "") -> str:
    """A new, empty database named `<prefix>_<run id><suffix>`; its SQLAlchemy URL."""
    server, prefix = _server_and_prefix()
    name = f"{prefix}_{RUN_ID}{suffix}"
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{OWNER}'")
    return f"{server}/{name}"


def drop_databases_of_dead_runs() -> list[str]:
    """Drop the databases that earlier runs on this host created and could not drop."""
    _, prefix = _server_and_prefix()
    with _admin_connection() as conn:
        rows = conn.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname LIKE %s",
            (prefix.replace("_", r"\_") + r"\_%",),
        ).fetchall()
        dropped = [name for name, owner in rows if owner and left_by_a_dead_run(owner)]
        for name in dropped:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return dropped


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    assert RUN_ID in name, f"not a database of this run: {name}"
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(suffix: str) -> Iterator[str]:
    """An empty database for the block, dropped after it."""
    url = create_database(suffix)
    try:
        yield url
    finally:
        drop_database(url)
