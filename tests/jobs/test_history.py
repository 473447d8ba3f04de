"""The history log loses no line: a process killed between committing a task's end and
writing its line leaves the row without its note, and the reconciler writes the line, once
(jobs/history.py). The end-to-end case, a worker SIGKILLed right after a task is done, is
tests/test_faults.py::test_sigkilled_worker_twice_loses_no_task."""

from datetime import UTC, datetime, timedelta

from jobs.history import LIVE_WORKER_GRACE, append_history, log_end
from jobs.transcription.transcribe import claim_task
from jobs.upkeep.reconciler import reconcile
from models import TaskStatus
from tests.utils.api import submit
from tests.utils.audio import audio_file
from tests.utils.logs import logged
from tests.utils.records import add_task_row, history_lines, task_row


def ended_unlogged(settings, worker: str, ago: timedelta = timedelta(minutes=1)):
    """A done task as its worker left it when killed right after the commit."""
    return add_task_row(
        settings, status=TaskStatus.DONE, text="hello", worker_name=worker,
        finished_at=datetime.now(UTC) - ago,
    )  # fmt: skip


def test_the_line_a_dead_worker_did_not_write_is_written_once(settings, redis):
    task = ended_unlogged(settings, "host.gone")

    assert reconcile(settings, redis).relogged == [task.id]
    assert reconcile(settings, redis).relogged == []  # noted on the row

    [line] = history_lines(settings)
    assert (line["task_id"], line["status"], line["text"]) == (str(task.id), "done", "hello")
    assert line["worker"] == "host.gone"
    assert task_row(settings, task.id).history_logged_at is not None


def test_a_line_already_in_the_log_is_noted_not_written_again(settings, redis):
    task = ended_unlogged(settings, "host.gone")
    append_history(settings.logs_path, task)  # killed after the line, before its note

    assert reconcile(settings, redis).relogged == [task.id]

    assert [line["task_id"] for line in history_lines(settings)] == [str(task.id)]
    assert task_row(settings, task.id).history_logged_at is not None


def test_a_live_worker_is_left_to_write_its_own_line(settings, redis, live_worker):
    fresh = ended_unlogged(settings, live_worker.name)  # between its commit and its line
    # A worker that has not written its line this long never will: a name outlived its process.
    stale = ended_unlogged(settings, live_worker.name, LIVE_WORKER_GRACE + timedelta(minutes=1))

    assert reconcile(settings, redis).relogged == [stale.id]

    assert [line["task_id"] for line in history_lines(settings)] == [str(stale.id)]
    assert task_row(settings, fresh.id).history_logged_at is None


def test_a_task_a_worker_ends_is_noted_and_left_alone(client, run_worker, settings, redis):
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    run_worker()

    assert task_row(settings, task_id).history_logged_at is not None
    assert reconcile(settings, redis).relogged == []
    assert [line["task_id"] for line in history_lines(settings)] == [task_id]


def test_a_new_run_of_a_retried_task_owes_a_line_of_its_own(settings):
    task = add_task_row(
        settings, status=TaskStatus.QUEUED, audio_key="x.flac", history_logged_at=datetime.now(UTC)
    )

    assert claim_task(settings, task.id, "host.a") is not None

    assert task_row(settings, task.id).history_logged_at is None


def test_a_note_the_database_refuses_fails_nothing_and_is_made_later(settings, redis):
    task = ended_unlogged(settings, "host.gone")
    down = settings.model_copy(
        update={"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"}
    )
    with logged("WARNING") as warnings:
        log_end(down, task)  # the end is committed: a blip now must not fail the job
    assert any("history line written, not noted" in message for message in warnings)

    assert reconcile(settings, redis).relogged == [task.id]

    assert [line["task_id"] for line in history_lines(settings)] == [str(task.id)]
    assert task_row(settings, task.id).history_logged_at is not None
