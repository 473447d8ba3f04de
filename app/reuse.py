"""Answering a submit with a task that already exists: a repeated `Idempotency-Key` from the
same caller, or (DEDUPE=true) the same audio, options and model as a finished task."""

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import Caller
from models import Task, TaskStatus
from models.task import OPTION_COLUMNS
from storage import Storage

REPLAY_HEADER = "Idempotent-Replayed"
DEDUPE_HEADER = "Deduplicated"
IDEMPOTENCY_INDEX = "uq_task_api_key_id_idempotency_key"


def same_caller(caller: Caller) -> ColumnElement[bool]:
    """With auth off every caller is one: the null key."""
    return Task.api_key_id.is_not_distinct_from(caller.key_id)


def find_by_idempotency_key(session: Session, caller: Caller, key: str) -> Task | None:
    query = select(Task).where(same_caller(caller), Task.idempotency_key == key)
    return session.scalar(query)


def find_finished_twin(session: Session, caller: Caller, task: Task) -> Task | None:
    """The caller's latest `done` task of the same audio, model and options, if any."""
    same_options = [
        getattr(Task, name).is_not_distinct_from(getattr(task, name)) for name in OPTION_COLUMNS
    ]
    query = (
        select(Task)
        .where(same_caller(caller), Task.status == TaskStatus.DONE)
        .where(Task.sha256 == task.sha256, Task.model == task.model, *same_options)
        .order_by(Task.finished_at.desc())
        .limit(1)
    )
    return session.scalar(query)


def commit_new_task(session: Session, storage: Storage, task: Task, caller: Caller) -> Task:
    """Insert the task; returns it, or the caller's existing task when a concurrent submit
    with the same Idempotency-Key won the insert (the unique index decides). Either way,
    a recording no row refers to is deleted."""
    audio_key, idempotency_key = task.audio_key, task.idempotency_key
    assert audio_key is not None
    session.add(task)
    try:
        session.commit()
    except IntegrityError as exc:
        storage.delete(audio_key)
        session.rollback()
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
        if idempotency_key is None or constraint != IDEMPOTENCY_INDEX:
            raise
        existing = find_by_idempotency_key(session, caller, idempotency_key)
        if existing is None:  # the winner was deleted in between: nothing to replay
            raise
        return existing
    except BaseException:
        storage.delete(audio_key)
        raise
    return task
