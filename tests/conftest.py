"""Test fixtures on real services: Postgres (a database of this run's own), Redis (a db index
this run found empty and claimed), the real worker classes and the real bundled
faster-whisper model.

Other checkouts, tools and developers may use the same Postgres and Redis at the same time: a
run creates its own database (dropped at the end) and claims an empty Redis db index with a
marker key, and cleans only what it created. TEST_DATABASE_URL names the server and the prefix
of the database name; TEST_REDIS_URL names the Redis server (with a db index: that one, which
must be empty).
"""

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import text

from alembic import command
from app.config import Settings, get_settings
from app.main import create_app
from jobs.queues import live_workers
from jobs.worker import TranscriptionWorker
from models.db import get_engine
from tests.utils.audio import long_recording
from tests.utils.bot_api_standin import BotApiStandIn, bot_api_standin, telegram_env
from tests.utils.databases import create_database, drop_database, drop_databases_of_dead_runs
from tests.utils.paths import ROOT
from tests.utils.processes import run_worker_process, start_worker, stop, uvicorn_server
from tests.utils.redis_db import claim_empty_db, clear_db, release_db
from tests.utils.s3 import S3Endpoint, empty_prefix, new_prefix, s3_endpoint
from tests.utils.waiting import wait_for
from tests.utils.workers import run_worker_in_process, worker_thread


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Test settings, exported to the environment so worker subprocesses share them."""
    drop_databases_of_dead_runs()
    database_url = create_database()
    redis_url = claim_empty_db()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
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
    try:
        alembic_config = Config(str(ROOT / "alembic.ini"))
        alembic_config.attributes["configure_logger"] = False  # keep pytest's logging setup
        command.upgrade(alembic_config, "head")
        yield get_settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        get_engine(database_url).dispose()
        drop_database(database_url)
        release_db(redis_url)


@pytest.fixture
def redis(settings: Settings) -> Iterator[Redis]:
    """This run's Redis db, emptied (but for the claim) before and after the test."""
    client = Redis.from_url(settings.REDIS_URL)
    clear_db(client)
    yield client
    clear_db(client)
    client.close()


@pytest.fixture(autouse=True)
def clean_state(settings: Settings, redis: Redis) -> Iterator[None]:
    """Every test starts with no tasks, no queued jobs, no recordings and no history, and
    with the settings the environment gives (a test's monkeypatched variables apply)."""
    with get_engine(settings.DATABASE_URL).begin() as conn:
        conn.execute(text("TRUNCATE task, api_key"))
    for directory in (settings.recordings_path, settings.logs_path):
        if directory.exists():
            for path in directory.iterdir():
                if path.is_file():
                    path.unlink()
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def run_worker(settings: Settings) -> Callable[[], None]:
    """Drain the default model's queue with the real TranscriptionWorker, in this process."""
    return run_worker_in_process


@pytest.fixture
def run_worker_subprocess(settings: Settings) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Drain the queue with `python -m jobs.worker --burst`: where the process is the point."""
    return run_worker_process


@pytest.fixture
def live_worker(settings: Settings, redis: Redis) -> Iterator[TranscriptionWorker]:
    """A long-running TranscriptionWorker, ready (heartbeat written) on yield: in a thread of
    this process, with the session's model, wherever signals and processes are not the point."""
    with worker_thread(redis) as worker:
        yield worker


@pytest.fixture
def worker_process(settings: Settings, redis: Redis) -> Iterator[subprocess.Popen[str]]:
    """A long-running worker process, ready (model loaded, heartbeat written) on yield:
    for tests that signal, stop or kill it."""
    process = start_worker()
    try:
        wait_for(lambda: live_workers(redis), timeout=60, message="worker heartbeat")
        yield process
    finally:
        stop(process)


@pytest.fixture(scope="module")
def api_server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API under uvicorn with API keys on, one per test module (it keeps no state of its
    own between requests: rows and keys are cleared around each test as usual)."""
    with uvicorn_server(tmp_path_factory.mktemp("web") / "web.log", AUTH_ENABLED="true") as url:
        yield url


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Endpoint]:
    """This run's bucket: on TEST_S3_ENDPOINT when set, else on moto's S3 server, the
    declared stand-in (tests/utils/s3.py). Started only by the tests that ask for it."""
    with s3_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def s3_settings(
    s3: S3Endpoint, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """The service with STORAGE_BACKEND=s3, its keys under a prefix of this test's own (in
    the environment too, for worker processes); the prefix is emptied afterwards."""
    prefix = new_prefix()
    for name, value in s3.env(prefix).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    empty_prefix(s3, prefix)


@pytest.fixture
def bot_api(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[BotApiStandIn]:
    """Telegram's Bot API as a declared stand-in (it cannot run here), with the bot's settings
    exported (for get_settings() and worker processes) while the test runs."""
    with bot_api_standin() as standin:
        for name, value in telegram_env(standin.url).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield standin
    get_settings.cache_clear()


@pytest.fixture
def long_wav(tmp_path: Path) -> Path:
    """Twenty minutes of speech: minutes of work, so a run that was not stopped shows."""
    return long_recording(tmp_path / "long.wav", repeats=24)
