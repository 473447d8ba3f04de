"""scripts/loadtest.py against a real uvicorn and a real worker: a short run writes a report
of real numbers; an unreachable server or a refused key ends in one sentence."""

import re
import subprocess
import sys

import pytest

from models import Scope
from models.api_key import create_key
from models.db import session_scope
from tests.utils.paths import ROOT
from tests.utils.processes import free_port


def loadtest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/loadtest.py", *args], cwd=ROOT, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def summary_value(report: str, measure: str) -> float:
    match = re.search(rf"^\| {re.escape(measure)} \| ([\d.]+) \|$", report, re.MULTILINE)
    assert match, f"no `{measure}` row in the report:\n{report}"
    return float(match[1])


def test_short_run_reports_completed_tasks_latencies_and_queue_depth(
    api_server, live_worker, settings, tmp_path
):
    with session_scope(settings.DATABASE_URL) as session:
        key = create_key(session, "loadtest", list(Scope))[1]  # admin: also the queue depth
    report_path = tmp_path / "report.md"
    result = loadtest("-c", "3", "-d", "5s", "--mode", "short", "--server", api_server,
                      "--api-key", key, "--report", str(report_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = report_path.read_text()
    assert "## Summary" in result.stdout and str(report_path) in result.stdout

    completed = summary_value(report, "tasks completed")
    assert completed > 0
    assert summary_value(report, "tasks submitted") == completed
    assert summary_value(report, "errors") == 0 and "## Errors\n\nNone." in report
    assert summary_value(report, "throughput (tasks completed per minute)") > 0
    # jfk.flac is 11 s long: the audio rate follows from the tasks and the wall time.
    wall = summary_value(report, "wall time (s)")
    audio_rate = summary_value(report, "audio seconds transcribed per wall second")
    assert audio_rate == pytest.approx(completed * 11 / wall, rel=0.05)
    for request in ("submit", "poll", "submit → done"):
        row = re.search(rf"^\| {request} \| (\d+) \| ([\d.]+) \|", report, re.MULTILINE)
        assert row and int(row[1]) > 0 and float(row[2]) > 0, request
    samples = re.findall(r"^\| \d+ \| (\d+) \| (\d+) \| 1 \| [01] \|", report, re.MULTILINE)
    assert len(samples) >= 2  # at the start, every 5 s, and at the end; one live worker


def test_unreachable_server_and_refused_key_end_in_one_sentence(api_server, tmp_path):
    report_path = tmp_path / "report.md"
    nowhere = loadtest("-c", "2", "-d", "2s", "--server", f"http://127.0.0.1:{free_port()}",
                       "--report", str(report_path))  # fmt: skip
    assert nowhere.returncode == 1
    assert nowhere.stderr.startswith("loadtest: error: cannot reach the service at")
    refused = loadtest("-c", "2", "-d", "2s", "--server", api_server, "--api-key", "asr_wrong",
                       "--report", str(report_path))  # fmt: skip
    assert refused.returncode == 1
    assert "refused the API key (401: the API key is unknown or revoked)" in refused.stderr
    assert "Traceback" not in nowhere.stderr + refused.stderr
    assert not report_path.exists()
