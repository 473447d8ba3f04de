"""Child processes started by tests: workers, uvicorn, free ports. Every one is stopped in a
`finally`, so a failing test leaves nothing behind to take later tests' jobs."""

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.utils.paths import ROOT
from tests.utils.waiting import wait_until_serving

# A burst worker that is still busy after this long is stuck, not slow.
WORKER_TIMEOUT_SECONDS = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(**extra: str) -> dict[str, str]:
    """The environment a Procfile runner gives: the project's virtualenv first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **extra}


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobs.worker", *args]


def start_worker(*args: str, **env: str) -> subprocess.Popen[str]:
    """A worker process (`python -m jobs.worker`) with the tests' environment plus `env`.
    Its log is in STORAGE_PATH/logs/worker.log (a pipe nobody reads would stall it)."""
    return subprocess.Popen(
        worker_command(*args), cwd=ROOT, env={**os.environ, **env}, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def run_worker_process(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A worker process in burst mode until its queue is empty; fails the test if it fails."""
    done = subprocess.run(
        worker_command("--burst", *args), cwd=ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=WORKER_TIMEOUT_SECONDS,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it does not exit in `timeout` s; safe on an exited process."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def paused(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """SIGSTOP for the block (so what the test looks at cannot move on), SIGCONT after."""
    process.send_signal(signal.SIGSTOP)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGCONT)


@contextmanager
def running(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """`process`, stopped when the block ends, however it ends."""
    try:
        yield process
    finally:
        stop(process)


@contextmanager
def uvicorn_server(log: Path, host: str = "127.0.0.1", **env: str) -> Iterator[str]:
    """The API under uvicorn on a free port, as operators run it; yields its base URL."""
    port = free_port()
    url = f"http://{host}:{port}"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
             "--host", host, "--port", str(port)],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        with running(process):
            wait_until_serving(f"{url}/health", timeout=30)
            yield url
