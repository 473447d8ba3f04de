"""What scripts/serve settles before starting anything, and what scripts run beside it find:
a taken port named at once; the embedded servers' addresses in STORAGE_PATH."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.config import EMBEDDED_SERVICES_FILE, Settings
from models import ApiKey
from models.db import session_scope
from tests.utils.paths import ROOT
from tests.utils.processes import free_port

pytest.importorskip("honcho", reason="needs `uv sync --inexact --extra embedded`")


def environment(**extra: str) -> dict[str, str]:
    """The tests' environment without the server URLs, as a new user's shell has it."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return {**env, **extra}


@pytest.mark.parametrize("setting", ["PORT", "RQ_DASHBOARD_PORT"])
def test_serve_names_a_taken_port_before_starting_anything(setting: str, tmp_path: Path):
    ports = {"PORT": str(free_port()), "RQ_DASHBOARD_PORT": str(free_port())}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(ports[setting])))
        taken.listen()
        started = time.monotonic()
        serve = subprocess.run(
            [sys.executable, "scripts/serve.py", "--embedded"], cwd=ROOT, capture_output=True,
            text=True, timeout=60, env=environment(STORAGE_PATH=str(tmp_path), **ports),
        )  # fmt: skip
    assert serve.returncode == 1
    assert f"serve: {setting}={ports[setting]} is taken" in serve.stderr, serve.stderr
    assert time.monotonic() - started < 30
    assert "embedded" not in serve.stdout  # nothing was started
    assert not (tmp_path / "embedded").exists()


def record_services(storage: Path, **urls: str) -> None:
    path = storage / EMBEDDED_SERVICES_FILE
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"{name}={url}\n" for name, url in urls.items()))


def test_apikey_finds_the_embedded_database_through_storage_path(settings: Settings, tmp_path):
    """The recorded address is the test database here: serve's embedded one for the script."""
    record_services(tmp_path, DATABASE_URL=settings.DATABASE_URL, REDIS_URL=settings.REDIS_URL)

    created = subprocess.run(
        [sys.executable, "scripts/apikey.py", "create", "made-beside-serve"], cwd=ROOT,
        capture_output=True, text=True, timeout=60, env=environment(STORAGE_PATH=str(tmp_path)),
    )  # fmt: skip

    assert created.returncode == 0, created.stderr
    with session_scope(settings.DATABASE_URL) as session:
        names = session.scalars(select(ApiKey.name)).all()
    assert names == ["made-beside-serve"]


def test_the_environment_wins_over_the_recorded_addresses(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    record_services(tmp_path, DATABASE_URL="postgresql+psycopg://asr@127.0.0.1:1/asr",
                    REDIS_URL="redis://127.0.0.1:2/0")  # fmt: skip
    monkeypatch.delenv("REDIS_URL")

    found = Settings(STORAGE_PATH=tmp_path)

    assert found.DATABASE_URL == settings.DATABASE_URL  # set in the environment: kept
    assert found.REDIS_URL == "redis://127.0.0.1:2/0"  # not set: the recorded one
    assert Settings(STORAGE_PATH=tmp_path / "elsewhere").REDIS_URL == "redis://127.0.0.1:6379/0"
