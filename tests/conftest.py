"""Test fixtures on real services: Postgres (own database), Redis (own db index), a real RQ
worker process and the real bundled faster-whisper model.

Override the defaults with TEST_DATABASE_URL and TEST_REDIS_URL.
"""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic.config import Config
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import text

from alembic import command
from app.config import Settings, get_settings
from app.main import create_app
from jobs.queues import live_workers
from models.db import get_engine
from tests.helpers import ROOT, wait_for
from tests.test_procfile import free_port

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/asr_test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
WORKER_TIMEOUT_SECONDS = 240


def _recreate_database(url: str) -> None:
    """Drop and create the test database so every run starts from `alembic upgrade head`."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    base, name = plain.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Test settings, exported to the environment so worker subprocesses share them."""
    env = {
        "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL,
        "STORAGE_PATH": str(tmp_path_factory.mktemp("storage")),
        "WHISPER_MODEL": "tiny.en",
        "WHISPER_DEVICE": "cpu",
        "WORKER_HEARTBEAT_TTL_SECONDS": "6",
        # Tests set up lost tasks on purpose and want them recovered without waiting.
        "RECONCILE_GRACE_SECONDS": "0",
        # Most tests are about other things; tests/app/test_auth.py turns it on.
        "AUTH_ENABLED": "false",
        "LOG_LEVEL": "INFO",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    _recreate_database(TEST_DATABASE_URL)
    alembic_config = Config(str(ROOT / "alembic.ini"))
    alembic_config.attributes["configure_logger"] = False  # keep pytest's logging setup
    command.upgrade(alembic_config, "head")
    yield get_settings()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()
    get_engine(TEST_DATABASE_URL).dispose()


@pytest.fixture
def redis(settings: Settings) -> Iterator[Redis]:
    client = Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def clean_state(settings: Settings, redis: Redis) -> Iterator[None]:
    """Every test starts with no tasks, no queued jobs, no recordings and no history."""
    with get_engine(settings.DATABASE_URL).begin() as conn:
        conn.execute(text("TRUNCATE task, api_key"))
    for directory in (settings.recordings_path, settings.logs_path):
        if directory.exists():
            for path in directory.iterdir():
                if path.is_file():
                    path.unlink()
    yield


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobs.worker", *args]


@pytest.fixture
def run_worker(settings: Settings) -> Callable[[], subprocess.CompletedProcess[str]]:
    """Run a real worker process in burst mode until the queue is empty."""

    def run() -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            worker_command("--burst"),
            cwd=ROOT,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT_SECONDS,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    return run


@pytest.fixture
def live_worker(settings: Settings, redis: Redis) -> Iterator[subprocess.Popen[str]]:
    """A long-running worker process, ready (model loaded, heartbeat written) on yield."""
    process = subprocess.Popen(
        worker_command(), cwd=ROOT, env=os.environ.copy(), text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(lambda: live_workers(redis), timeout=60, message="worker heartbeat")
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def uvicorn_server(log: Path, **env: str) -> Iterator[str]:
    """The API under uvicorn on a free port, as operators run it; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            wait_for(answers, timeout=30, message="uvicorn")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=15)


@pytest.fixture
def api_server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The API under uvicorn with API keys on."""
    with uvicorn_server(tmp_path / "web.log", AUTH_ENABLED="true") as url:
        yield url
