"""Downloading the original recording."""

import uuid
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.deps import SessionDep, StorageDep
from app.errors import AudioGone, TaskNotFound, responses
from app.routes.tasks import get_task_or_404
from models import Task
from storage import AudioNotFound
from storage.base import CHUNK_SIZE

router = APIRouter(prefix="/asr", tags=["tasks"])


@router.get(
    "/audio/{task_id}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"audio/*": {}}, "description": "The original recording."},
        **responses(TaskNotFound, AudioGone),
    },
)
def download_audio(
    task_id: uuid.UUID, session: SessionDep, storage: StorageDep
) -> StreamingResponse:
    """The uploaded recording as it was received."""
    task = get_task_or_404(session, task_id)
    if task.audio_key is None:
        raise AudioGone("the recording was removed by retention")
    try:
        audio = storage.open(task.audio_key)
    except AudioNotFound:
        raise AudioGone("the recording is no longer stored") from None
    return StreamingResponse(
        _chunks(audio),
        media_type=task.content_type,
        headers={
            "Content-Length": str(task.size_bytes),
            "Content-Disposition": content_disposition(download_name(task)),
        },
    )


def download_name(task: Task) -> str:
    """The client's file name with the extension of the format we actually stored."""
    extension = (task.audio_key or "").rsplit(".", 1)[-1]
    stem = task.filename.rsplit(".", 1)[0] if "." in task.filename else task.filename
    return f"{stem or task.id}.{extension}"


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name, both safely escaped."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename)  # fmt: skip
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _chunks(audio: BinaryIO) -> Iterator[bytes]:
    with audio:
        while chunk := audio.read(CHUNK_SIZE):
            yield chunk
