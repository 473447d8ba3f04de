"""The Procfile's `release` and `web` commands work as written: a real uvicorn serves the API
and a submitted file is transcribed by a real worker."""

import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import JFK_LINE, ROOT, audio_file, normalize, wait_for


def process_env(**extra: str) -> dict[str, str]:
    """The environment a Procfile runner gives: the project's virtualenv first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **extra}


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_procfile_declares_release_web_and_worker():
    assert procfile().keys() == {"release", "web", "worker", "maintenance", "cron", "dashboard"}
    assert procfile()["worker"] == "python -m jobs.worker"


def test_release_command_migrates(settings):
    result = subprocess.run(
        procfile()["release"], shell=True, cwd=ROOT, env=process_env(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.fixture
def web_server(settings):
    port = free_port()
    command = procfile()["web"].replace("0.0.0.0", "127.0.0.1")
    process = subprocess.Popen(
        ["bash", "-c", command], cwd=ROOT, env=process_env(PORT=str(port)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base_url}/health", timeout=1).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, timeout=30, message=f"web process ({shlex.quote(command)})")
        yield base_url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=15)


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
    assert httpx.get(f"{web_server}/health", timeout=5).json()["status"] == "ready"
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

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 401
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, timeout=30, message="dashboard process")
        assert httpx.get(url, auth=("ops", "s3cret"), timeout=5).status_code == 200
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=15)
