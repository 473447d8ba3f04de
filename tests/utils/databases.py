"""Databases of this test run's own on the shared Postgres server: created by the run, named
after it, and dropped by it (nothing else on the server is touched)."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

# TEST_DATABASE_URL names the server and the prefix of the run's database names.
TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/asr_test"
)
RUN_ID = uuid.uuid4().hex[:8]


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
    return f"{server}/{name}"


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
