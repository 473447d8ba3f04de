"""Submitting recordings and reading results."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, Response, UploadFile
from loguru import logger
from starlette.concurrency import run_in_threadpool

from app.auth import ReadCaller, SubmitCaller
from app.callbacks import CallbackRequest, callback_form
from app.client_metadata import metadata_form
from app.deps import QueueDep, RedisDep, ReleasingRoute, SessionDep, SettingsDep, StorageDep
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
from app.polling import PollHints, conditional
from app.reuse import REPLAY_HEADER, find_by_idempotency_key
from app.routes.exports import EXPORT_RESPONSES, ResultQuery, export_response
from app.schemas import (
    NullAsNone,
    TaskExisting,
    TaskOptions,
    TaskPublic,
    TaskQueued,
    task_options_form,
)
from app.submission import next_recording_seq, queue_recording
from app.views import existing_response, find_task_or_404, queued_response, task_public
from jobs.queues import live_workers, model_queue, queue_position_async
from models import TaskStatus

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
    model_name: Annotated[
        str | None, Form(alias="model", description=MODEL_DOC), NullAsNone
    ] = None,
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
    # Drawn on the event loop; callers of this function (the OpenAI routes) pass their own.
    seq: Annotated[int | None, Depends(next_recording_seq)] = None,
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
    submitted = queue_recording(
        session, queue, storage, settings, caller, audio, options, model,
        client_metadata=client_metadata, idempotency_key=idempotency_key, callback=callback,
        seq=seq,
    )  # fmt: skip
    if submitted.reused is not None:
        return existing_response(request, response, submitted.task, submitted.reused)
    return queued_response(request, session, queue, redis, submitted.task)


@router.get(
    "/result/{task_id}",
    response_model=TaskPublic,
    responses={
        **EXPORT_RESPONSES,
        304: {"description": "Unchanged since the ETag sent in `If-None-Match`."},
    },
)
async def read_result(
    task_id: uuid.UUID, request: Request, caller: ReadCaller,
    export: Annotated[ResultQuery, Query()],
) -> TaskPublic | Response:  # fmt: skip
    """Status of a task and, once done, its transcript; with `format`, the transcript as a
    file (srt, vtt, ...). Carries an `ETag` (send it back as `If-None-Match`: a bodiless 304
    while nothing changed) and, while the task is queued or processing, a `Retry-After`
    (seconds, 1-30) that follows the estimated wait."""
    # Clients poll this: it runs on the event loop, reading through app/async_db.py.
    state = request.app.state
    task = await find_task_or_404(state.db, task_id, caller)
    if export.format is not None:  # rendering a long transcript is work: not on the loop
        return await run_in_threadpool(export_response, task, export.format, export)
    public = task_public(task, request)
    if task.status == TaskStatus.QUEUED:
        own_queue = model_queue(state.redis, state.settings, task.model)
        public.position = await queue_position_async(state.redis_async, own_queue, task.id)
    headers = {}
    if task.status in (TaskStatus.QUEUED, TaskStatus.PROCESSING):
        hints: PollHints = state.poll_hints
        wait = await hints.retry_after(
            state.settings.DATABASE_URL, state.redis, task, public.position
        )
        headers["Retry-After"] = str(wait)
    return conditional(request, public.model_dump_json(by_alias=True).encode(), headers)
