"""Jobs that a release before the regroup of jobs/ into packages left in Redis name their
functions, and kept results their classes, by the old flat paths; after an upgrade the jobs
still run and the results still load (jobs/__init__.py)."""

import importlib
import pickle
import uuid

import pytest
from rq import Callback, Queue
from rq.job import Job
from rq.utils import import_attribute

from app.config import Settings
from jobs.delivery.telegram_replies import REPLY_JOB
from jobs.delivery.webhooks import DELIVER_JOB
from jobs.queues import ON_JOB_FAILURE, TRANSCRIBE_JOB
from jobs.transcription.outcome import on_job_failure
from jobs.upkeep.reconciler import ReconcileReport
from jobs.upkeep.sweeper import Removal, SweepReport
from tests.utils.api import result, submit
from tests.utils.audio import audio_file
from tests.utils.records import history_lines

# Every function and callback an earlier release enqueued or scheduled, by its old name.
OLD_NAMES = {
    "jobs.transcribe.transcribe": TRANSCRIBE_JOB,
    "jobs.outcome.on_job_failure": ON_JOB_FAILURE,
    "jobs.webhooks.deliver_webhook": DELIVER_JOB,
    "jobs.telegram_replies.send_outcome": REPLY_JOB,
    "jobs.sweeper.sweep": "jobs.upkeep.sweeper.sweep",
    "jobs.reconciler.reconcile": "jobs.upkeep.reconciler.reconcile",
}


@pytest.mark.parametrize(("old", "new"), OLD_NAMES.items())
def test_an_old_job_name_resolves_to_the_moved_function(old: str, new: str):
    assert import_attribute(old) is import_attribute(new)


def test_an_old_module_path_is_the_moved_module_itself():
    old = importlib.import_module("jobs.transcribe")
    assert old is importlib.import_module("jobs.transcription.transcribe")
    assert old.__spec__ is not None and old.__spec__.name == "jobs.transcription.transcribe"


@pytest.mark.parametrize(
    "report",
    [
        ReconcileReport(requeued=[uuid.uuid4()]),
        SweepReport(dry_run=False, recordings=[Removal("a.wav", 3, "age", uuid.uuid4())]),
    ],
)
def test_a_result_pickled_under_an_old_module_path_loads(report: object):
    # What RQ kept of a sweep or reconcile job run by the release before the regroup.
    new_module = type(report).__module__
    old_module = new_module.replace(".upkeep", "")
    pickled = pickle.dumps(report, protocol=0).replace(
        f"{new_module}\n".encode(), f"{old_module}\n".encode()
    )
    assert f"{old_module}\n".encode() in pickled
    assert pickle.loads(pickled) == report


def test_a_name_that_never_existed_is_still_an_error():
    with pytest.raises(ValueError, match="Invalid attribute name"):
        import_attribute("jobs.transcriber.transcribe")


def test_a_job_queued_under_the_old_names_is_transcribed(client, run_worker, redis,
                                                         settings: Settings):  # fmt: skip
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    queued = Job.fetch(task_id, connection=redis)
    queue = Queue(queued.origin, connection=redis)
    queued.delete()  # and queued again as the release before the regroup did
    queue.enqueue(
        "jobs.transcribe.transcribe", task_id, job_id=task_id,
        on_failure=Callback("jobs.outcome.on_job_failure"),
        job_timeout=settings.JOB_TIMEOUT_SECONDS + 60,
    )  # fmt: skip
    old = Job.fetch(task_id, connection=redis)
    assert old.func_name == "jobs.transcribe.transcribe"
    assert old.failure_callback is on_job_failure

    run_worker()

    shown = result(client, task_id)
    assert shown["status"] == "done", shown
    assert "ask not what your country can do for you" in shown["text"].lower()
    [line] = history_lines(settings)
    assert uuid.UUID(line["task_id"]) == uuid.UUID(task_id) and line["status"] == "done"
