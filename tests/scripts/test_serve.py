"""scripts/serve.py: everything from one command, on embedded servers, stopped by Ctrl-C
without losing data (a second start finds the task)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.utils.audio import JFK_LINE, audio_file, normalize
from tests.utils.paths import ROOT
from tests.utils.processes import free_port
from tests.utils.waiting import answers, wait_for, wait_until_serving

pytest.importorskip("honcho", reason="needs `uv sync --extra embedded`")

pytestmark = pytest.mark.slow


def start_serve(storage: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(STORAGE_PATH=str(storage), PORT=str(port), RQ_DASHBOARD_PORT=str(free_port()))
    # Started as a background job of a script would be: with SIGINT ignored. Ctrl-C (and the
    # SIGINT below) must stop it all the same.
    return subprocess.Popen(
        [sys.executable, "scripts/serve.py", "--embedded"], cwd=ROOT, env=env,
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip


def interrupt(serve: subprocess.Popen[bytes], log: Path) -> None:
    serve.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert serve.wait(timeout=90) == 0, log.read_text()[-4000:]


def test_serve_runs_everything_and_ctrl_c_stops_it_keeping_the_data(tmp_path: Path):
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    serve = start_serve(tmp_path / "storage", port, log)
    try:
        wait_until_serving(f"{url}/health", timeout=180, statuses=(200,))
        wait_for(lambda: "serve: ready" in log.read_text(), timeout=10, message="the banner")
        assert f"{url}/docs" in log.read_text() and f"{url}/rq/" in log.read_text()
        with audio_file("jfk.flac").open("rb") as audio:
            submitted = httpx.post(f"{url}/api/v1/asr/submit", files={"audio": audio}, timeout=30)
        task_id = submitted.json()["task_id"]
        result_url = f"{url}/api/v1/asr/result/{task_id}"
        wait_for(lambda: httpx.get(result_url, timeout=5).json()["status"] == "done",
                 timeout=120, message="the transcript")  # fmt: skip
    finally:
        interrupt(serve, log)
    text = log.read_text()
    assert "serve: stopping embedded PostgreSQL" in text and "serve: stopped" in text
    assert not answers(f"{url}/health")

    serve = start_serve(tmp_path / "storage", port, log)
    try:
        wait_until_serving(f"{url}/health", timeout=180, statuses=(200,))
        task = httpx.get(result_url, timeout=5).json()
        assert task["status"] == "done" and JFK_LINE in normalize(task["text"])
    finally:
        interrupt(serve, log)
