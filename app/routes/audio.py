"""Downloading the original recording."""

import uuid
from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.deps import SessionDep, StorageDep
from app.errors import AudioGone, TaskNotFound, responses
from app.routes.tasks import get_task_or_404
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
    extension = task.audio_key.rsplit(".", 1)[-1]
    return StreamingResponse(
        _chunks(audio),
        media_type=task.content_type,
        headers={
            "Content-Length": str(task.size_bytes),
            "Content-Disposition": f'attachment; filename="{task.id}.{extension}"',
        },
    )


def _chunks(audio: BinaryIO) -> Iterator[bytes]:
    with audio:
        while chunk := audio.read(CHUNK_SIZE):
            yield chunk
