"""Transcripts as files to download: `GET /asr/result/{id}?format=` and its alias
`GET /asr/export/{id}/{format}`. The formatting itself is in app/exports.py."""

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from app.auth import ReadCaller
from app.deps import ReleasingRoute, SessionDep
from app.errors import VALIDATION_RESPONSES, TaskNotFound, TranscriptNotReady, responses
from app.exports import (
    EXPORT_FORMATS,
    MEDIA_TYPES,
    ExportFormat,
    SubtitleOptions,
    to_srt,
    to_tsv,
    to_txt,
    to_vtt,
)
from app.routes.audio import content_disposition
from app.schemas import TranscriptSegment
from app.views import get_task_or_404
from models import Task, TaskStatus

router = APIRouter(
    prefix="/asr", tags=["tasks"], responses=VALIDATION_RESPONSES, route_class=ReleasingRoute
)

FORMAT_DOC = (
    "Return the transcript as a file: `txt` (a line per segment), `json`, `srt`, `vtt` or "
    "`tsv` (Whisper's columns, in milliseconds)."
)
MAX_LINE_WIDTH_DOC = (
    "srt/vtt: wrap each segment's text at word boundaries into lines of at most this many "
    "characters (longer only for a single longer word); a segment longer than "
    "`max_line_count` lines becomes several cues, timed by its words."
)
MAX_LINE_COUNT_DOC = "srt/vtt: at most this many lines per cue; needs `max_line_width`."
HIGHLIGHT_WORDS_DOC = (
    "srt/vtt: a cue per spoken word with that word underlined (`<u>`); needs a task "
    "submitted with `word_timestamps=true`."
)


class SubtitleQuery(BaseModel):
    max_line_width: int | None = Field(default=None, ge=1, le=1000, description=MAX_LINE_WIDTH_DOC)
    max_line_count: int | None = Field(default=None, ge=1, le=100, description=MAX_LINE_COUNT_DOC)
    highlight_words: bool = Field(default=False, description=HIGHLIGHT_WORDS_DOC)


class ResultQuery(SubtitleQuery):
    format: ExportFormat | None = Field(default=None, description=FORMAT_DOC)


# The 200 bodies besides JSON, for the OpenAPI page.
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The task (JSON), or with a format the transcript as a file.",
        "content": {
            MEDIA_TYPES[name].split(";")[0]: {"schema": {"type": "string"}}
            for name in EXPORT_FORMATS
            if name != "json"
        },
    },
    **responses(TaskNotFound, TranscriptNotReady),
}


@router.get("/export/{task_id}/{format}", response_class=Response, responses=EXPORT_RESPONSES)
def export_transcript(
    task_id: uuid.UUID,
    export_format: Annotated[ExportFormat, Path(alias="format", description=FORMAT_DOC)],
    subtitles: Annotated[SubtitleQuery, Query()],
    session: SessionDep,
    caller: ReadCaller,
) -> Response:
    """The transcript of a done task as a file: txt, json, srt, vtt or tsv."""
    task = get_task_or_404(session, task_id, caller)
    return export_response(task, export_format, subtitles)


def export_response(task: Task, export_format: ExportFormat, subtitles: SubtitleQuery) -> Response:
    """The transcript as a download named after the uploaded file; 409 unless it is done."""
    if task.status != TaskStatus.DONE:
        raise TranscriptNotReady(
            f"task {task.id} is {task.status}; its transcript can be exported once it is done",
            status=task.status,
        )
    options = SubtitleOptions(
        subtitles.max_line_width, subtitles.max_line_count, subtitles.highlight_words
    )
    if options.highlight_words and export_format in ("srt", "vtt") and not task.word_timestamps:
        raise RequestValidationError([{
            "type": "value_error", "loc": ("query", "highlight_words"), "input": True,
            "msg": "highlight_words needs a task submitted with word_timestamps=true",
        }])  # fmt: skip
    body = render(task, export_format, options)
    return Response(
        body.encode(),
        media_type=MEDIA_TYPES[export_format],
        headers={"Content-Disposition": content_disposition(export_name(task, export_format))},
    )


def render(task: Task, export_format: ExportFormat, options: SubtitleOptions) -> str:
    segments = task.segments or []
    match export_format:
        case "txt":
            return to_txt(segments)
        case "tsv":
            return to_tsv(segments)
        case "srt":
            return to_srt(segments, options)
        case "vtt":
            return to_vtt(segments, options)
        case "json":
            return json.dumps(transcript_document(task), ensure_ascii=False, indent=2) + "\n"


def transcript_document(task: Task) -> dict[str, Any]:
    """The JSON export: the transcript and what produced it; words only when requested."""
    segments = [TranscriptSegment.model_validate(s) for s in task.segments or []]
    return {
        "task_id": str(task.id),
        "filename": task.filename,
        "model": task.model,
        "task": task.task,
        "language": task.detected_language,
        "language_probability": task.language_probability,
        "duration": task.duration_seconds,
        "text": task.text or "",
        "segments": [
            {"id": index, **segment.model_dump(exclude_none=True)}
            for index, segment in enumerate(segments)
        ],
    }


def export_name(task: Task, extension: str) -> str:
    """The uploaded file's name with the export's extension: `talk.mp3` → `talk.srt`."""
    stem = task.filename.rsplit(".", 1)[0] if "." in task.filename else task.filename
    return f"{stem.strip() or 'transcript'}.{extension}"
