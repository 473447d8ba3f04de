"""The retention sweeper on real rows and real files."""

import io
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

from redis import Redis

from app.config import Settings
from jobs.upkeep.sweeper import sweep, sweep_lock
from models import Task
from models.db import session_scope
from storage import LocalStorage
from tests.utils.paths import ROOT
from tests.utils.records import make_task, recording_kept


def policy(settings: Settings, **limits) -> Settings:
    defaults = {"MAX_RECORDINGS": 0, "RECORDING_MAX_AGE": None, "RECORDINGS_MAX_BYTES": 0}
    return settings.model_copy(update={**defaults, **limits})


def test_count_policy_removes_the_oldest_ended_recordings_only(client, settings):
    in_flight = [make_task(settings, s, timedelta(days=9)) for s in ("queued", "processing")]
    ended = [make_task(settings, s, timedelta(days=5 - i))
             for i, s in enumerate(["done", "failed", "canceled", "done", "done"])]  # fmt: skip

    report = sweep(settings=policy(settings, MAX_RECORDINGS=4))

    assert [r.task_id for r in report.recordings] == ended[:3]
    assert all(recording_kept(settings, t) for t in in_flight + ended[3:])
    assert not any(recording_kept(settings, t) for t in ended[:3])
    with session_scope(settings.DATABASE_URL) as session:
        pruned = session.get(Task, ended[0])
        assert pruned.text == "kept transcript" and pruned.audio_removed_at is not None
        assert pruned.audio_removed_reason == "more than MAX_RECORDINGS=4"
    gone = client.get(f"/api/v1/asr/audio/{ended[0]}")
    assert gone.status_code == 410 and "MAX_RECORDINGS" in gone.json()["detail"]
    assert client.get(f"/api/v1/asr/result/{ended[0]}").json()["audio_url"] is None
    assert sweep(settings=policy(settings, MAX_RECORDINGS=4)).recordings == []  # idempotent


def test_age_policy_spares_new_and_in_flight_recordings(settings):
    old_done = make_task(settings, "done", timedelta(days=2))
    old_processing = make_task(settings, "processing", timedelta(days=2))
    new_done = make_task(settings, "done", timedelta(hours=1))
    report = sweep(settings=policy(settings, RECORDING_MAX_AGE=timedelta(days=1)))
    assert [r.task_id for r in report.recordings] == [old_done]
    assert report.recordings[0].reason == "older than RECORDING_MAX_AGE"
    assert recording_kept(settings, old_processing) and recording_kept(settings, new_done)


def test_size_policy_keeps_the_total_under_the_limit(settings):
    tasks = [make_task(settings, "done", timedelta(hours=3 - i)) for i in range(3)]
    report = sweep(settings=policy(settings, RECORDINGS_MAX_BYTES=2500))
    assert [r.task_id for r in report.recordings] == tasks[:1]
    assert report.bytes_freed == 1000
    assert [recording_kept(settings, t) for t in tasks] == [False, True, True]


def test_orphans_are_removed_and_vanished_files_are_noted(settings):
    storage = LocalStorage(settings.recordings_path)
    storage.save("old-orphan.wav", io.BytesIO(b"x" * 10))
    old = time.time() - 2 * 3600
    os.utime(settings.recordings_path / "old-orphan.wav", (old, old))
    storage.save("fresh-orphan.wav", io.BytesIO(b"y"))  # may be an upload whose row is coming
    vanished = make_task(settings, "done", timedelta(hours=1))
    (settings.recordings_path / f"{vanished}.wav").unlink()

    report = sweep(settings=policy(settings))

    assert [o.key for o in report.orphans] == ["old-orphan.wav"]
    assert not storage.exists("old-orphan.wav") and storage.exists("fresh-orphan.wav")
    assert report.vanished == [vanished]
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, vanished)
        assert task.audio_key is None
        assert task.audio_removed_reason == "the file vanished from storage"


def test_dry_run_removes_nothing(settings):
    tasks = [make_task(settings, "done", timedelta(days=3)) for _ in range(3)]
    report = sweep(dry_run=True, settings=policy(settings, MAX_RECORDINGS=1))
    assert len(report.recordings) == 2 and report.summary().startswith("sweep would remove 2")
    assert all(recording_kept(settings, t) for t in tasks)


def test_transcript_max_age_deletes_old_tasks_entirely(settings):
    old = make_task(settings, "done", timedelta(days=40))
    new = make_task(settings, "done", timedelta(days=1))
    report = sweep(settings=policy(settings, TRANSCRIPT_MAX_AGE=timedelta(days=30)))
    assert report.tasks_deleted == [old]
    with session_scope(settings.DATABASE_URL) as session:
        assert session.get(Task, old) is None and session.get(Task, new) is not None
    assert not (settings.recordings_path / f"{old}.wav").exists()


def test_a_sweep_holding_the_lock_makes_another_skip(settings, redis: Redis):
    make_task(settings, "done", timedelta(days=3))
    with sweep_lock(redis) as acquired:
        assert acquired
        report = sweep(settings=policy(settings, MAX_RECORDINGS=0, RECORDING_MAX_AGE=timedelta(1)))
    assert report.skipped == "another sweep is running" and report.recordings == []


def test_two_concurrent_sweeps_do_not_double_delete(settings):
    tasks = [make_task(settings, "done", timedelta(days=3)) for _ in range(6)]
    limited = policy(settings, MAX_RECORDINGS=2)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(sweep(settings=limited)))
               for _ in range(2)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    removed = [r.task_id for report in reports for r in report.recordings]
    assert sorted(removed) == sorted(tasks[:4]) and len(removed) == 4
    assert sum(recording_kept(settings, t) for t in tasks) == 2


def test_sweep_script_dry_run_prints_what_it_would_remove(settings):
    task_id = make_task(settings, "done", timedelta(days=3))
    make_task(settings, "done", timedelta(days=1))
    result = subprocess.run(
        [sys.executable, "scripts/sweep.py", "--dry-run"], cwd=ROOT, capture_output=True,
        text=True, timeout=60, env={**os.environ, "MAX_RECORDINGS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"would remove recording {task_id}.wav (1000 bytes): more than MAX_RECORDINGS=1" in (
        result.stdout
    )
    assert recording_kept(settings, task_id)
