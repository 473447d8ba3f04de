"""scripts/serve.py: everything from one command, on embedded servers at addresses that
scripts run beside it find and that stay the same, stopped by Ctrl-C without losing data (a
second start finds the task) and without a SIGKILL, also during a maintenance job."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.job import JobStatus

from app.config import EMBEDDED_SERVICES_FILE
from tests.utils.audio import JFK_LINE, audio_file, normalize
from tests.utils.paths import ROOT
from tests.utils.processes import free_port
from tests.utils.waiting import answers, wait_for, wait_until_serving

pytest.importorskip("honcho", reason="needs `uv sync --inexact --extra embedded`")

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


def recorded_services(storage: Path) -> dict[str, str]:
    lines = (storage / EMBEDDED_SERVICES_FILE).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def create_key_beside(storage: Path) -> subprocess.CompletedProcess[str]:
    """`scripts/apikey.py` as the banner says to run it: told nothing but STORAGE_PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "scripts/apikey.py", "create", "second"], cwd=ROOT, text=True,
        env={**env, "STORAGE_PATH": str(storage)}, capture_output=True, timeout=60,
    )  # fmt: skip


def maintenance_job_running(redis_url: str) -> None:
    """A maintenance job that outlasts honcho's 5 s between SIGTERM and SIGKILL."""
    job = Queue("maintenance", connection=Redis.from_url(redis_url)).enqueue("time.sleep", 7)
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED, timeout=30,
             message="the maintenance worker to start the job")  # fmt: skip


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
        services = recorded_services(tmp_path / "storage")
        created = create_key_beside(tmp_path / "storage")
        assert created.returncode == 0 and "created key" in created.stdout, created.stderr
        maintenance_job_running(services["REDIS_URL"])
    finally:
        interrupt(serve, log)
    text = log.read_text()
    assert "serve: stopping embedded PostgreSQL" in text and "serve: stopped" in text
    assert "SIGKILL" not in text and "killed" not in text, text[-3000:]
    assert not answers(f"{url}/health")

    serve = start_serve(tmp_path / "storage", port, log)
    try:
        wait_until_serving(f"{url}/health", timeout=180, statuses=(200,))
        task = httpx.get(result_url, timeout=5).json()
        assert task["status"] == "done" and JFK_LINE in normalize(task["text"])
        assert recorded_services(tmp_path / "storage") == services  # the same ports
    finally:
        interrupt(serve, log)
