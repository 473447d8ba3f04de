"""OpenAI-compatible audio API: `POST /v1/audio/transcriptions`, `/v1/audio/translations` and
`GET /v1/models`, for clients built on OpenAI's SDKs. An upload goes through the native
submit path (storage, task row, queue), then the request waits for the transcript up to
the server's limit; past it, 202 with the task id to poll. Errors in OpenAI's shape."""

import asyncio
import functools
import itertools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import Caller, ReadCaller, SubmitCaller, authenticate
from app.deps import QueueDep, RedisDep, SessionDep, SettingsDep, StorageDep
from app.errors import AppError, BadRequest, Conflict
from app.exports import MEDIA_TYPES, to_srt, to_vtt
from app.openai_compat import (
    OPENAI_WHISPER_MODEL,
    OpenAIAccepted,
    OpenAIModel,
    OpenAIModelList,
    OpenAIResponseFormat,
    OpenAITranscription,
    OpenAIVerboseTranscription,
    TimestampGranularity,
    model_list,
    resolve_model,
    verbose_json,
)
from app.openai_errors import OpenAIErrorBody, OpenAIRoute
from app.routes.tasks import submit_task
from app.schemas import TaskOptions
from app.submission import next_recording_seq
from app.views import get_task_or_404
from models import Task, TaskStatus
from models.task import FINAL_STATUSES

MODEL_OWNER = "whisper-batch"
# Polling the row while waiting: quick at first (short clips finish in a second or two),
# then once a second.
POLL_INTERVALS = (0.1, 0.2, 0.3, 0.5, 1.0)


class TranscriptionFailed(AppError):
    status_code = 500
    error = "transcription failed"


class ModelNotFound(AppError):
    status_code = 404
    error = "model not found"


def openai_wait_seconds(settings: SettingsDep) -> float:
    """How long a request waits for its transcript (a dependency, so tests can shorten it)."""
    return settings.OPENAI_WAIT_SECONDS


class SubmitDeps:
    """What the native submit needs. The caller must be able to read too: the answer is
    the transcript."""

    def __init__(
        self, session: SessionDep, queue: QueueDep, redis: RedisDep, storage: StorageDep,
        settings: SettingsDep, caller: SubmitCaller, reader: ReadCaller,
        wait_seconds: Annotated[float, Depends(openai_wait_seconds)],
    ) -> None:  # fmt: skip
        self.session, self.queue, self.redis, self.storage = session, queue, redis, storage
        self.settings, self.caller, self.wait_seconds = settings, caller, wait_seconds


@dataclass(frozen=True)
class AudioRequest:
    """The OpenAI form fields, once parsed."""

    task: Literal["transcribe", "translate"]
    model: str
    language: str | None
    prompt: str | None
    temperature: float
    response_format: OpenAIResponseFormat
    granularities: Sequence[str]

    def task_options(self) -> TaskOptions:
        return TaskOptions(
            language=self.language,
            task=self.task,
            initial_prompt=self.prompt,
            word_timestamps="word" in self.granularities,
            # OpenAI: 0 lets the decoder raise the temperature when it fails (Whisper's
            # fallback, which faster-whisper runs when none is given).
            temperature=self.temperature or None,
        )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": OpenAIErrorBody, "description": "A bad request, in OpenAI's shape."},
    "5XX": {"model": OpenAIErrorBody, "description": "A server-side failure."},
}
AUDIO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": OpenAITranscription | OpenAIVerboseTranscription,
        "description": "The transcript in `response_format`: JSON (`{text}` or verbose_json), "
        "or text, srt, vtt as text.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    202: {"model": OpenAIAccepted, "description": "Not ready within the server's wait."},
}

router = APIRouter(
    prefix="/v1", tags=["openai"], route_class=OpenAIRoute, responses=ERROR_RESPONSES
)
AnyCaller = Annotated[Caller, Depends(authenticate)]
Deps = Annotated[SubmitDeps, Depends()]

FILE_DOC = "The recording: audio or video."
MODEL_DOC = f"`{OPENAI_WHISPER_MODEL}` (the server's default model) or a model from /v1/models."
PROMPT_DOC = "Text that sets style and vocabulary (Whisper's initial prompt)."
FORMAT_DOC = "json, text, srt, verbose_json or vtt."
TEMPERATURE_DOC = "0-1. 0 (the default) lets Whisper raise it when decoding fails, as OpenAI does."
LANGUAGE_DOC = "ISO 639-1 code of the spoken language; absent: detected."
GRANULARITIES_DOC = "`segment` and/or `word` (word timings) for verbose_json."


@router.post("/audio/transcriptions", response_class=Response, responses=AUDIO_RESPONSES)
async def create_transcription(
    request: Request,
    file: Annotated[UploadFile, File(description=FILE_DOC)],
    deps: Deps,
    model: Annotated[str, Form(description=MODEL_DOC)] = OPENAI_WHISPER_MODEL,
    language: Annotated[str | None, Form(description=LANGUAGE_DOC)] = None,
    prompt: Annotated[str | None, Form(description=PROMPT_DOC)] = None,
    response_format: Annotated[OpenAIResponseFormat, Form(description=FORMAT_DOC)] = "json",
    temperature: Annotated[float, Form(ge=0, le=1, description=TEMPERATURE_DOC)] = 0.0,
    timestamp_granularities: Annotated[
        list[TimestampGranularity] | None,
        Form(alias="timestamp_granularities[]", description=GRANULARITIES_DOC),
    ] = None,
) -> Response:
    """Transcribe a recording (OpenAI's `audio.transcriptions.create`)."""
    asked = AudioRequest("transcribe", model, language, prompt, temperature, response_format,
                         timestamp_granularities or [])  # fmt: skip
    return await transcribe(request, deps, file, asked)


@router.post("/audio/translations", response_class=Response, responses=AUDIO_RESPONSES)
async def create_translation(
    request: Request,
    file: Annotated[UploadFile, File(description=FILE_DOC)],
    deps: Deps,
    model: Annotated[str, Form(description=MODEL_DOC)] = OPENAI_WHISPER_MODEL,
    prompt: Annotated[str | None, Form(description=PROMPT_DOC)] = None,
    response_format: Annotated[OpenAIResponseFormat, Form(description=FORMAT_DOC)] = "json",
    temperature: Annotated[float, Form(ge=0, le=1, description=TEMPERATURE_DOC)] = 0.0,
) -> Response:
    """Translate a recording into English text (OpenAI's `audio.translations.create`)."""
    asked = AudioRequest("translate", model, None, prompt, temperature, response_format, [])
    return await transcribe(request, deps, file, asked)


@router.get("/models")
def list_models(settings: SettingsDep, caller: AnyCaller) -> OpenAIModelList:
    """The models requests may name, in OpenAI's list shape."""
    return model_list(settings.offered_models, MODEL_OWNER)


@router.get("/models/{model}")
def retrieve_model(model: str, settings: SettingsDep, caller: AnyCaller) -> OpenAIModel:
    """One model, if requests may name it."""
    for listed in model_list(settings.offered_models, MODEL_OWNER).data:
        if listed.id == model:
            return listed
    raise ModelNotFound(f"The model `{model}` does not exist", code="model_not_found")


async def transcribe(
    request: Request, deps: SubmitDeps, file: UploadFile, asked: AudioRequest
) -> Response:
    """Submit through the native path, wait for the task to end, answer in OpenAI's form."""
    offered = deps.settings.offered_models
    model = resolve_model(asked.model, deps.settings.WHISPER_MODEL, offered)
    if model is None:
        raise BadRequest(
            f"The model `{asked.model}` does not exist or is not served here; use "
            f"`{OPENAI_WHISPER_MODEL}` or one of: {', '.join(offered)}",
            param="model", code="model_not_found",
        )  # fmt: skip
    options = asked.task_options()
    seq = await next_recording_seq(request)
    queued = await run_in_threadpool(functools.partial(
        submit_task, request=request, audio=file, options=options, model_name=model,
        session=deps.session, queue=deps.queue, redis=deps.redis, storage=deps.storage,
        settings=deps.settings, caller=deps.caller, response=Response(), seq=seq,
    ))  # fmt: skip
    await wait_until_ended(request, deps.session, queued.task_id, deps.wait_seconds)
    task = await run_in_threadpool(reload_task, deps.session, queued.task_id, deps.caller)
    if task.status not in FINAL_STATUSES:
        accepted = OpenAIAccepted(
            task_id=task.id, status=task.status, result_url=queued.result_url,
            detail=f"not done within {deps.wait_seconds:g} s; poll result_url for the "
            "transcript",
        )  # fmt: skip
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202,
                            headers={"Location": queued.result_url})  # fmt: skip
    return openai_response(task, asked)


async def wait_until_ended(
    request: Request, session: Session, task_id: uuid.UUID, seconds: float
) -> None:
    """Until the task has ended, `seconds` have passed, or the client has gone away."""
    deadline = time.monotonic() + seconds
    for interval in itertools.chain(POLL_INTERVALS, itertools.repeat(POLL_INTERVALS[-1])):
        if await run_in_threadpool(read_status, session, task_id) in FINAL_STATUSES:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0 or await request.is_disconnected():
            return
        await asyncio.sleep(min(interval, remaining))


def read_status(session: Session, task_id: uuid.UUID) -> str | None:
    """One short transaction: no connection is held between polls."""
    try:
        return session.scalar(select(Task.status).where(Task.id == task_id))
    finally:
        session.commit()


def reload_task(session: Session, task_id: uuid.UUID, caller: Caller) -> Task:
    session.expire_all()  # the row as the worker left it, not as submit saw it
    task = get_task_or_404(session, task_id, caller)
    session.commit()
    return task


def openai_response(task: Task, asked: AudioRequest) -> Response:
    if task.status == TaskStatus.FAILED:
        raise TranscriptionFailed(f"task {task.id}: the transcription failed: {task.error}")
    if task.status == TaskStatus.CANCELED:
        raise Conflict(f"task {task.id} was canceled before it was done")
    text, segments = task.text or "", task.segments or []
    match asked.response_format:
        case "json":
            return JSONResponse(OpenAITranscription(text=text).model_dump())
        case "text":
            return PlainTextResponse(f"{text}\n")
        case "srt":
            return Response(to_srt(segments), media_type=MEDIA_TYPES["srt"])
        case "vtt":
            return Response(to_vtt(segments), media_type=MEDIA_TYPES["vtt"])
        case "verbose_json":
            body = verbose_json(asked.task, task.detected_language, task.duration_seconds,
                                text, segments, asked.granularities, task.temperature)  # fmt: skip
            return JSONResponse(body.model_dump(mode="json", exclude_none=True))
