"""Submitting recordings and reading results."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, Response, UploadFile
from loguru import logger
from sqlalchemy.orm import Session

from app.auth import ReadCaller, SubmitCaller
from app.callbacks import CallbackRequest, callback_form
from app.client_metadata import metadata_form
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
from app.reuse import (
    DEDUPE_HEADER,
    REPLAY_HEADER,
    commit_new_task,
    find_by_idempotency_key,
    find_finished_twin,
)
from app.routes.exports import EXPORT_RESPONSES, ResultQuery, export_response
from app.schemas import TaskExisting, TaskOptions, TaskPublic, TaskQueued, task_options_form
from app.uploads import StoredUpload, store_upload
from app.views import existing_response, get_task_or_404, queued_response, task_public
from jobs.queues import live_workers, model_queue, queue_position
from models import Task, TaskStatus
from models.task import RECORDING_SEQ

IDEMPOTENCY_KEY_DOC = (
    "1-255 printable ASCII characters. A repeated key from the same caller returns the task "
    "it first created (200, `Idempotent-Replayed: true`) and stores nothing: the key stands "
    "for the request, so a different file or options under a used key still get the "
    "original task."
)

EXISTING_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "model": TaskExisting,
        "description": "An existing task: a replayed Idempotency-Key, or with DEDUPE=true a "
        "finished task of the same audio, options and model.",
    }
}

router = APIRouter(
    prefix="/asr", tags=["tasks"], responses=VALIDATION_RESPONSES, route_class=ReleasingRoute
)


@router.post(
    "/submit",
    status_code=202,
    responses=EXISTING_RESPONSE
    | responses(
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
    response: Response,
    client_metadata: Annotated[dict[str, Any] | None, Depends(metadata_form)] = None,
    callback: Annotated[CallbackRequest | None, Depends(callback_form)] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x20-\x7e]+$",
            description=IDEMPOTENCY_KEY_DOC,
        ),
    ] = None,
) -> TaskQueued | TaskExisting:
    """Upload a recording; answers at once with a task id while a worker transcribes it."""
    if idempotency_key is not None:
        existing = find_by_idempotency_key(session, caller, idempotency_key)
        if existing is not None:
            logger.info("task {}: replayed for a repeated Idempotency-Key", existing.id)
            return existing_response(request, response, existing, REPLAY_HEADER)
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
        id=task_id, seq=seq, model=model, api_key_id=caller.key_id,
        **upload_columns(stored), client_metadata=client_metadata,
        idempotency_key=idempotency_key, **options.model_dump(exclude={"beam_size"}),
        beam_size=options.beam_size or settings.WHISPER_DEFAULT_BEAM_SIZE,
        callback_url=callback and callback.url, callback_secret=callback and callback.secret,
    )  # fmt: skip
    if settings.DEDUPE and (twin := find_finished_twin(session, caller, task)) is not None:
        storage.delete(stored.key)
        logger.info("task {}: returned again for identical audio and options", twin.id)
        return existing_response(request, response, twin, DEDUPE_HEADER)
    saved = commit_new_task(session, storage, task, caller)
    if saved is not task:  # a concurrent submit with the same Idempotency-Key won
        return existing_response(request, response, saved, REPLAY_HEADER)
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


def upload_columns(stored: StoredUpload) -> dict[str, Any]:
    """The task columns that describe the stored recording."""
    return {
        "filename": stored.filename,
        "audio_key": stored.key,
        "content_type": stored.media.content_type,
        "size_bytes": stored.size_bytes,
        "sha256": stored.sha256,
        "duration_seconds": stored.media.duration_seconds,
    }


def draw_recording_seq(session: Session) -> int:
    """The next recording number. The read transaction ends at once (a sequence value
    survives a rollback) so no transaction stays open while the upload is copied."""
    seq = session.scalar(RECORDING_SEQ.next_value().select())
    session.rollback()
    assert seq is not None
    return seq
