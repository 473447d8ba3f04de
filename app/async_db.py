"""The database on the event loop, for the requests clients make all the time (polling a
result, the history page, the API-key lookup): psycopg's async connections, no ORM session
and no thread-pool hop. Statements are still written with SQLAlchemy, against the same
tables, and compiled once.

Measured under wrk, the ORM session, select and commit cost 359 µs of CPU per poll against
56 µs for the same statement through psycopg, and the thread-pool hop around them as much
again (docs/performance-notes.md, "API profile"). Everything else (submits, deletes, the
worker) keeps the ORM.

Connections are autocommit: a read is one round trip, with no BEGIN or COMMIT around it.
They are opened when needed, up to `POOL_SIZE` per API process, and kept; one that fails
after sitting in the pool (Postgres restarted meanwhile) is replaced and the statement sent
again, once, so a restart costs no request an error. A database that cannot be reached is an
`OperationalError` at once, which the error handlers answer with a 503.
"""

import asyncio
import functools
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import make_url
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.sql import Executable

# Enough to keep the loop busy: a connection is held only while its statement runs. More
# requests than this wait for one on the loop, which costs them nothing but the wait.
POOL_SIZE = 10
CONNECT_TIMEOUT_SECONDS = 5
_DIALECT = psycopg_dialect.dialect()

Row = dict[str, Any]


@functools.lru_cache(maxsize=256)
def compiled(statement: Executable) -> tuple[str, dict[str, Any]]:
    """`statement` as psycopg's SQL (`%(name)s` parameters) and the values SQLAlchemy bound
    itself (literals in the statement). Statements are module constants, so each is
    compiled once per process."""
    query = statement.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
    return str(query), dict(query.params)


def conninfo(database_url: str) -> str:
    """psycopg's connection string for a SQLAlchemy URL (`postgresql+psycopg://...`)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


class _StaleConnection(Exception):
    """A pooled connection failed: Postgres may have restarted since it was last used."""


class AsyncDatabase:
    """A small pool of async connections, made for one event loop (the app's lifespan
    creates it and closes it)."""

    def __init__(self, database_url: str, size: int = POOL_SIZE) -> None:
        self.conninfo = conninfo(database_url)
        self.idle: list[psycopg.AsyncConnection[Row]] = []
        self.slots = asyncio.Semaphore(size)
        self.closed = False

    async def fetch_one(self, statement: Executable, **params: Any) -> Row | None:
        rows = await self.run(statement, params, fetch=True)
        return rows[0] if rows else None

    async def fetch_all(self, statement: Executable, **params: Any) -> list[Row]:
        return await self.run(statement, params, fetch=True)

    async def execute(self, statement: Executable, **params: Any) -> None:
        await self.run(statement, params, fetch=False)

    async def run(self, statement: Executable, params: dict[str, Any], fetch: bool) -> list[Row]:
        sql, bound = compiled(statement)
        values = {**bound, **params}
        async with self.slots:
            try:
                pooled = self.idle.pop() if self.idle else None
                return await self.run_on(pooled or await self.connect(), sql, values, fetch,
                                         pooled=pooled is not None)  # fmt: skip
            except _StaleConnection:
                return await self.run_on(await self.connect(), sql, values, fetch, pooled=False)

    async def run_on(
        self, conn: psycopg.AsyncConnection[Row], sql: str, values: dict[str, Any],
        fetch: bool, pooled: bool,
    ) -> list[Row]:  # fmt: skip
        """Runs the statement, then puts `conn` back in the pool unless it broke."""
        try:
            cursor = await conn.execute(sql, values)
            return await cursor.fetchall() if fetch else []
        except psycopg.OperationalError as error:
            if pooled:
                raise _StaleConnection from error
            raise  # a new connection failing: the database is down (a 503)
        finally:
            # An error the server reported leaves an autocommit connection usable; a lost
            # connection, or a request cancelled mid-statement, does not.
            idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if idle and not conn.broken and not self.closed:
                self.idle.append(conn)
            else:
                await conn.close()

    async def connect(self) -> psycopg.AsyncConnection[Row]:
        return await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, row_factory=dict_row,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )  # fmt: skip

    async def close(self) -> None:
        self.closed = True
        while self.idle:
            await self.idle.pop().close()
