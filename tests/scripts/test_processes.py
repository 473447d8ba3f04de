"""scripts/processes.py: the Procfile's processes stopped without honcho's SIGKILL lines, a
forked RQ job (its own process group) given the grace to finish, and nothing left behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import JobStatus

from tests.utils.paths import ROOT
from tests.utils.waiting import wait_for

pytest.importorskip("honcho", reason="needs `uv sync --inexact --extra embedded`")

from scripts.processes import alive, process_groups_under

pytestmark = pytest.mark.slow


def start(tmp_path: Path, grace: float) -> tuple[subprocess.Popen[bytes], Path]:
    """The real maintenance worker (a forking RQ worker) under the runner, in a session of
    its own as scripts/serve.py starts it."""
    procfile = tmp_path / "Procfile"
    # `other` stops at once on SIGTERM, as the web process does: honcho's 5 s to SIGKILL start.
    procfile.write_text("maintenance: python -m jobs.maintenance\nother: sleep 600\n")
    log = tmp_path / "processes.log"
    bin_dir = str(Path(sys.executable).parent)
    runner = subprocess.Popen(
        [sys.executable, "scripts/processes.py", "--grace", str(grace), "--procfile",
         str(procfile), "maintenance", "other"],
        cwd=ROOT, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return runner, log


def job_running(redis: Redis, seconds: float, marker: Path) -> str:
    """A job that sleeps, then leaves `marker`: it ran to its end if the marker is there."""
    queue = Queue("maintenance", connection=redis)
    command = f"sleep {seconds} && touch {marker}"
    job = queue.enqueue("subprocess.run", ["sh", "-c", command], job_timeout=120)
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.STARTED, timeout=60,
             message="the maintenance worker to start the job")  # fmt: skip
    return job.id


def interrupt(runner: subprocess.Popen[bytes], log: Path) -> float:
    """Ctrl-C, as scripts/serve.py sends it; the seconds until everything has stopped."""
    groups = process_groups_under([runner.pid])
    started = time.monotonic()
    runner.send_signal(signal.SIGINT)
    try:
        runner.wait(timeout=60)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
    took = time.monotonic() - started
    # A process whose output has closed may take a moment more to exit; a job left running
    # would be there for a minute.
    wait_for(lambda: not any(map(alive, groups)), timeout=5,
             message=f"every process to exit\n{log.read_text()[-3000:]}")  # fmt: skip
    return took


def test_stop_during_a_forked_job_waits_for_it_without_sigkill(redis, tmp_path):
    runner, log = start(tmp_path, grace=30)
    job_id = job_running(redis, 7, tmp_path / "finished")  # past honcho's 5 s

    took = interrupt(runner, log)

    text = log.read_text()
    assert "SIGKILL" not in text and "killed" not in text, text[-3000:]
    assert (tmp_path / "finished").exists()  # the job ran to its end
    assert Queue("maintenance", connection=redis).fetch_job(job_id).get_status() == "finished"
    assert took < 20, text[-3000:]


def test_a_job_past_the_grace_is_killed_in_one_line(redis, tmp_path):
    runner, log = start(tmp_path, grace=2)
    job_running(redis, 60, tmp_path / "finished")

    took = interrupt(runner, log)

    text = log.read_text()
    assert "SIGKILL" not in text, text[-3000:]
    killed = [line for line in text.splitlines() if "killed" in line]
    assert len(killed) == 1 and "maintenance.1" in killed[0], text[-3000:]
    assert not (tmp_path / "finished").exists()
    assert took < 15, text[-3000:]
