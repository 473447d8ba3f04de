"""The Procfile's `release` and `web` commands work as written: a real uvicorn serves the API
and a submitted file is transcribed by a real worker."""

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from tests.utils.audio import JFK_LINE, audio_file, normalize
from tests.utils.databases import fresh_database
from tests.utils.paths import ROOT
from tests.utils.processes import free_port, process_env
from tests.utils.waiting import wait_for, wait_until_serving


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def test_procfile_declares_release_web_and_worker():
    assert procfile().keys() == {
        "release", "web", "worker", "maintenance", "deliveries", "cron", "dashboard",
    }  # fmt: skip
    assert procfile()["worker"] == "python -m jobs.worker"


def test_release_command_migrates_an_empty_database(settings):
    with fresh_database("_release") as url:
        result = subprocess.run(
            procfile()["release"], shell=True, cwd=ROOT, env=process_env(DATABASE_URL=url),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                version = conn.scalar(text("SELECT version_num FROM alembic_version"))
                tables = set(inspect(conn).get_table_names())
        finally:
            engine.dispose()
    assert (
        version == ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()
    )
    assert {"task", "api_key"} <= tables


@pytest.fixture
def web_process(settings):
    """The Procfile's web command on a free port: its base URL and its process."""
    port = free_port()
    command = procfile()["web"].replace("0.0.0.0", "127.0.0.1")
    process = subprocess.Popen(
        ["bash", "-c", command], cwd=ROOT, env=process_env(PORT=str(port)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base_url}/health", timeout=30)
        yield base_url, process
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=15)


@pytest.fixture
def web_server(web_process):
    return web_process[0]


def test_web_process_runs_the_standard_librarys_event_loop(web_process):
    """uvloop left 1-2% of requests waiting 1-3 s under 500 pollers, where the standard
    loop answered every one within 0.7 s at the same rate (docs/performance-notes.md)."""
    _, process = web_process
    pid = process.pid  # bash runs the command in its place (exec)
    assert "uvicorn" in Path(f"/proc/{pid}/cmdline").read_text()
    assert "uvloop" not in Path(f"/proc/{pid}/maps").read_text()


def test_web_process_serves_submit_and_result(web_server, live_worker):
    with audio_file("jfk.flac").open("rb") as audio:
        response = httpx.post(
            f"{web_server}/api/v1/asr/submit", files={"audio": ("jfk.flac", audio)}, timeout=30
        )
    assert response.status_code == 202, response.text
    result_url = response.json()["result_url"]
    assert result_url.startswith(web_server)

    def finished() -> dict | None:
        body = httpx.get(result_url, timeout=5).json()
        return body if body["status"] in ("done", "failed") else None

    deadline = time.monotonic() + 60
    body = wait_for(finished, timeout=deadline - time.monotonic(), message="transcript")
    assert body["status"] == "done" and JFK_LINE in normalize(body["text"])
    # /health is worked out at most once a second: ready within that of the worker starting.
    wait_for(lambda: httpx.get(f"{web_server}/health", timeout=5).json()["status"] == "ready",
             timeout=10, message="ready")  # fmt: skip
    docs = httpx.get(f"{web_server}/docs", timeout=5)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_dashboard_process_serves_behind_credentials(settings):
    port = free_port()
    env = process_env(RQ_DASHBOARD_PORT=str(port), RQ_DASHBOARD_USERNAME="ops",
                      RQ_DASHBOARD_PASSWORD="s3cret")  # fmt: skip
    process = subprocess.Popen(
        ["bash", "-c", procfile()["dashboard"]], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, timeout=30, statuses=(401,))
        assert httpx.get(url, auth=("ops", "s3cret"), timeout=5).status_code == 200
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=15)
