"""The polled routes' async reads (app/async_db.py): rows equal the ORM's, a connection that
Postgres dropped costs no request an error, a database that is down is a 503, and the pool
stays within its size and closes with the app."""

import asyncio
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from app.async_db import POOL_SIZE, AsyncDatabase
from app.config import Settings
from app.main import create_app
from app.views import TASK_BY_ID
from models import Task
from models.db import session_scope
from models.task import task_snapshot
from tests.utils.records import make_task
from tests.utils.waiting import wait_for


def test_a_row_read_on_the_loop_reads_like_the_task_the_orm_loads(settings: Settings):
    task_id = make_task(settings, "done", timedelta(minutes=5))

    async def read() -> Task:
        db = AsyncDatabase(settings.DATABASE_URL)
        try:
            row = await db.fetch_one(TASK_BY_ID, task_id=task_id)
        finally:
            await db.close()
        assert row is not None
        return task_snapshot(row)

    snapshot = asyncio.run(read())
    with session_scope(settings.DATABASE_URL) as session:
        loaded = session.get(Task, task_id)
        assert loaded is not None
        for attribute in inspect(Task).column_attrs:  # every column, under its Python name
            key = attribute.key
            assert getattr(snapshot, key) == getattr(loaded, key), key
    assert snapshot.options() == loaded.options() and snapshot.text == "kept transcript"


def test_a_pooled_connection_postgres_dropped_is_replaced_without_an_error(
    client: TestClient, settings: Settings
):
    task_id = make_task(settings, "done", timedelta(minutes=5))
    first = client.get(f"/api/v1/asr/result/{task_id}")
    assert first.status_code == 200
    db: AsyncDatabase = client.app.state.db  # type: ignore[attr-defined]
    pids = [conn.info.backend_pid for conn in db.idle]
    assert pids, "the connection was not kept for the next request"
    with session_scope(settings.DATABASE_URL) as session:  # as a Postgres restart would
        for pid in pids:
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    again = client.get(f"/api/v1/asr/result/{task_id}")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert client.get("/api/v1/asr/history").json()["total"] == 1


def test_an_unreachable_database_makes_the_polled_routes_answer_503(settings: Settings):
    down = settings.model_copy(
        update={"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"}
    )
    with TestClient(create_app(down)) as client:
        for path in (f"/api/v1/asr/result/{uuid.uuid4()}", "/api/v1/asr/history"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert response.json()["dependency"] == "database", path


def test_the_pool_stays_within_its_size_and_closes_its_connections(settings: Settings):
    task_id = make_task(settings, "done", timedelta(minutes=5))

    async def burst() -> list[int]:
        db = AsyncDatabase(settings.DATABASE_URL)
        rows = await asyncio.gather(
            *(db.fetch_one(TASK_BY_ID, task_id=task_id) for _ in range(4 * POOL_SIZE))
        )
        assert all(row is not None and row["id"] == task_id for row in rows)
        kept = list(db.idle)
        assert 0 < len(kept) <= POOL_SIZE
        pids = [conn.info.backend_pid for conn in kept]
        await db.close()
        assert all(conn.closed for conn in kept) and not db.idle
        return pids

    pids = asyncio.run(burst())

    def backends_gone() -> bool:
        # A backend leaves pg_stat_activity a moment after its client's Terminate message
        # arrives, not at once: a busy machine shows it still there for a few milliseconds.
        with session_scope(settings.DATABASE_URL) as session:
            still_open = session.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": pids},
            )
        return still_open == 0

    wait_for(backends_gone, 10, "the closed pool's backends to exit")
