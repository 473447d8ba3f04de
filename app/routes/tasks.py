"""Submitting recordings and reading results."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from loguru import logger
from sqlalchemy.orm import Session

from app.auth import ReadCaller, SubmitCaller
from app.deps import QueueDep, RedisDep, ReleasingRoute, SessionDep, SettingsDep, StorageDep
from app.dispatch import dispatch
from app.errors import (
    VALIDATION_RESPONSES,
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMedia,
    responses,
)
from app.limits import enforce_key_limits
from app.model_choice import MODEL_DOC, check_model_supports, choose_model
from app.routes.exports import EXPORT_RESPONSES, ResultQuery, export_response
from app.schemas import TaskOptions, TaskPublic, TaskQueued, task_options_form
from app.uploads import store_upload
from app.views import get_task_or_404, queued_response, task_public
from jobs.queues import live_workers, model_queue, queue_position
from models import Task, TaskStatus
from models.task import RECORDING_SEQ

router = APIRouter(
    prefix="/asr", tags=["tasks"], responses=VALIDATION_RESPONSES, route_class=ReleasingRoute
)


@router.post(
    "/submit",
    status_code=202,
    responses=responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        PayloadTooLarge,
        UnsupportedMedia,
        TooManyRequests,
        ServiceUnavailable,
    ),
)
def submit_task(
    request: Request,
    audio: Annotated[UploadFile, File(description="The recording: audio or video file.")],
    options: Annotated[TaskOptions, Depends(task_options_form)],
    model_name: Annotated[str | None, Form(alias="model", description=MODEL_DOC)] = None,
    *,
    session: SessionDep,
    queue: QueueDep,
    redis: RedisDep,
    storage: StorageDep,
    settings: SettingsDep,
    caller: SubmitCaller,
) -> TaskQueued:
    """Upload a recording; answers at once with a task id while a worker transcribes it."""
    if settings.REJECT_WHEN_NO_WORKERS and not live_workers(redis):
        raise ServiceUnavailable(
            "no worker is running, and this server refuses work it cannot start "
            "(REJECT_WHEN_NO_WORKERS=true); try again when a worker is up"
        )
    model = choose_model(settings, model_name)
    check_model_supports(model, options)
    enforce_key_limits(session, redis, caller, settings)
    task_id = uuid.uuid4()
    seq = draw_recording_seq(session)
    stored = store_upload(audio, storage, task_id, seq, settings.max_upload_bytes,
                          settings.MAX_AUDIO_SECONDS)  # fmt: skip
    task = Task(
        id=task_id,
        seq=seq,
        filename=stored.filename,
        audio_key=stored.key,
        content_type=stored.media.content_type,
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
        duration_seconds=stored.media.duration_seconds,
        model=model,
        api_key_id=caller.key_id,
        **options.model_dump(exclude={"beam_size"}),
        beam_size=options.beam_size or settings.WHISPER_DEFAULT_BEAM_SIZE,
    )
    session.add(task)
    try:
        session.commit()
    except BaseException:
        storage.delete(stored.key)  # no row refers to it: keep no orphan file
        raise
    dispatch(session, queue, task, settings)
    logger.info(
        "task {}: queued {} ({}, {} bytes, {} s)",
        task_id, stored.filename, stored.media.container, stored.size_bytes,
        stored.media.duration_seconds,
    )  # fmt: skip
    return queued_response(request, session, queue, redis, task)


@router.get("/result/{task_id}", response_model=TaskPublic, responses=EXPORT_RESPONSES)
def read_result(
    task_id: uuid.UUID, request: Request, session: SessionDep, queue: QueueDep,
    caller: ReadCaller, export: Annotated[ResultQuery, Query()],
) -> TaskPublic | Response:  # fmt: skip
    """Status of a task and, once done, its transcript; with `format`, the transcript as a
    file (srt, vtt, ...)."""
    task = get_task_or_404(session, task_id, caller)
    if export.format is not None:
        return export_response(task, export.format, export)
    public = task_public(task, request)
    if task.status == TaskStatus.QUEUED:
        own_queue = model_queue(queue.connection, request.app.state.settings, task.model)
        public.position = queue_position(own_queue, task.id)
    return public


def draw_recording_seq(session: Session) -> int:
    """The next recording number. The read transaction ends at once (a sequence value
    survives a rollback) so no transaction stays open while the upload is copied."""
    seq = session.scalar(RECORDING_SEQ.next_value().select())
    session.rollback()
    assert seq is not None
    return seq
