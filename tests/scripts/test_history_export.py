"""scripts/history_export.py: the history log's lines for a time range, from Postgres."""

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from app.config import Settings
from models import Task
from models.db import session_scope
from tests.utils.api import submitted
from tests.utils.audio import audio_file
from tests.utils.paths import ROOT
from tests.utils.records import history_lines, make_task


def export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "scripts/history_export.py", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_export_has_the_lines_the_workers_wrote(
    client: TestClient, settings: Settings, run_worker: Callable[[], None]
):
    before = datetime.now(UTC)
    for _ in range(2):
        submitted(client, audio_file("jfk.flac"))
    run_worker()
    written = history_lines(settings)
    assert len(written) == 2

    everything = export("--since", before.isoformat())
    assert everything.returncode == 0, everything.stderr
    exported = [json.loads(line) for line in everything.stdout.splitlines()]
    assert exported == sorted(written, key=lambda line: (line["finished_at"], line["task_id"]))
    assert everything.stderr.strip() == "history_export: 2 lines"

    first_finish = datetime.fromisoformat(exported[0]["finished_at"])
    only_first = export("--until", (first_finish + timedelta(microseconds=1)).isoformat())
    assert [json.loads(line) for line in only_first.stdout.splitlines()] == exported[:1]
    assert export("--since", (datetime.now(UTC) + timedelta(minutes=1)).isoformat()).stdout == ""


def test_failed_tasks_are_exported_and_canceled_ones_are_not(settings: Settings):
    ended = {}
    for status in ("failed", "canceled"):
        ended[status] = make_task(settings, status, timedelta(hours=2))
        with session_scope(settings.DATABASE_URL) as session:
            session.get(Task, ended[status]).finished_at = datetime.now(UTC) - timedelta(hours=1)
    exported = [json.loads(line) for line in export().stdout.splitlines()]
    assert [(line["task_id"], line["status"]) for line in exported] == [
        (str(ended["failed"]), "failed")
    ]


def test_a_time_that_is_not_one_is_refused_in_words():
    refused = export("--since", "last tuesday")
    assert refused.returncode == 2
    assert "'last tuesday' is not a date or time" in refused.stderr
