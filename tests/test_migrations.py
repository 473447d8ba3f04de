"""The Alembic migrations create exactly the tables the models describe, and the latest one
can be undone and done again (a release rolled back, then forward) without losing rows."""

import uuid
from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, text

from alembic import command
from app.config import get_settings
from app.main import create_app
from models import Base
from models.db import get_engine
from tests.utils.databases import fresh_database
from tests.utils.paths import ROOT
from tests.utils.records import make_task

# A task row as any revision since 0009 stores it (the ORM's INSERT names every column of the
# latest): for tests that set up rows before upgrading.
INSERT_OLD_TASK = text(
    "INSERT INTO task (id, status, filename, content_type, size_bytes, sha256, model, task,"
    " word_timestamps, vad_filter, beam_size, attempts, progress, client_metadata, finished_at)"
    " VALUES (gen_random_uuid(), :status, 'a.oga', 'audio/ogg', 1, '0', 'tiny.en', 'transcribe',"
    " false, false, 5, 1, 0, CAST(:metadata AS jsonb), now()) RETURNING id"
)


def add_old_task(conn: Connection, status: str, metadata: str = "{}") -> uuid.UUID:
    return conn.scalar(INSERT_OLD_TASK, {"status": status, "metadata": metadata})


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    config.set_main_option("sqlalchemy.url", url)
    return config


def test_migrations_match_the_models(settings):
    with get_engine(settings.DATABASE_URL).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_the_latest_migration_goes_down_and_up_again_keeping_rows(settings, monkeypatch):
    with fresh_database("_downgrade") as url:
        monkeypatch.setenv("DATABASE_URL", url)  # alembic/env.py reads the settings
        get_settings.cache_clear()
        config = alembic_config(url)
        scripts = ScriptDirectory.from_config(config)
        head = scripts.get_current_head()
        previous = scripts.get_revision(head).down_revision
        command.upgrade(config, "head")
        engine = create_engine(url)
        task_id = make_task(settings.model_copy(update={"DATABASE_URL": url}), "processing",
                            timedelta(minutes=1))  # fmt: skip
        try:
            command.downgrade(config, "-1")
            with engine.connect() as conn:
                assert conn.scalar(text("SELECT version_num FROM alembic_version")) == previous
                status = conn.scalar(text("SELECT status FROM task WHERE id = :id"),
                                     {"id": task_id})  # fmt: skip
            assert status == "processing"

            command.upgrade(config, "head")
            with engine.connect() as conn:
                assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head
                assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
                assert conn.scalar(text("SELECT status FROM task WHERE id = :id"),
                                   {"id": task_id}) == "processing"  # fmt: skip
        finally:
            engine.dispose()
            get_engine(url).dispose()  # make_task's


def marked_after_upgrade(
    monkeypatch, revision: str, tasks: list[tuple[str, str]], marked: str
) -> dict[str, bool]:
    """Tasks (status, metadata) stored at `revision`, then upgraded to head: for each status,
    whether the upgrade set the column `marked`."""
    with fresh_database(f"_{revision}") as url:
        monkeypatch.setenv("DATABASE_URL", url)  # alembic/env.py reads the settings
        get_settings.cache_clear()
        config = alembic_config(url)
        command.upgrade(config, revision)
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                for status, metadata in tasks:
                    add_old_task(conn, status, metadata)
            command.upgrade(config, "head")
            with engine.connect() as conn:
                query = text(f"SELECT status, {marked} IS NOT NULL FROM task")
                return {status: bool(is_set) for status, is_set in conn.execute(query)}
        finally:
            engine.dispose()


def test_telegram_tasks_that_ended_before_reply_state_count_as_answered(monkeypatch):
    """Nothing recorded whether their replies went out: the reconciler must not send them."""
    tasks = [(status, '{"telegram": {}}') for status in ("done", "queued")]
    answered = marked_after_upgrade(monkeypatch, "0009", tasks, "telegram_reply_ended_at")
    assert answered == {"done": True, "queued": False}


def test_metadata_stored_deeper_than_the_limit_is_replaced_so_the_task_can_be_read(
    settings, monkeypatch
):
    """Rows stored before the 32-level bound: 300 levels answered 500 on every read."""
    with fresh_database("_deep") as url:
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()
        config = alembic_config(url)
        command.upgrade(config, "0010")
        local = settings.model_copy(update={"DATABASE_URL": url})
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                deep = add_old_task(conn, "done", f'{{"a": {"[" * 300 + "]" * 300}}}')
                shallow = add_old_task(conn, "done", '{"a": [[["kept"]]]}')
            command.upgrade(config, "head")
            with engine.connect() as conn:
                stored = dict(conn.execute(text("SELECT id, client_metadata FROM task")).all())
            assert stored[deep] == {"removed": "metadata nested more than 32 levels deep"}
            assert stored[shallow] == {"a": [[["kept"]]]}
            with TestClient(create_app(local)) as client:
                answer = client.get(f"/api/v1/asr/result/{deep}")
            assert answer.status_code == 200 and answer.json()["metadata"] == stored[deep]
        finally:
            engine.dispose()
            get_engine(url).dispose()


def test_tasks_that_ended_before_history_notes_count_as_logged(monkeypatch):
    """Nothing recorded whether their lines were written: the reconciler must not write every
    old task's line again."""
    tasks = [(status, "{}") for status in ("done", "failed", "canceled", "queued")]
    logged = marked_after_upgrade(monkeypatch, "0011", tasks, "history_logged_at")
    assert logged == {"canceled": False, "done": True, "failed": True, "queued": False}
