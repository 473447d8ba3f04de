"""Downloading the original recording, whole or by byte range (audio players seek with
Range requests)."""

import re
import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from app.auth import BrowserReadCaller
from app.deps import ReleasingRoute, SessionDep, StorageDep
from app.errors import VALIDATION_RESPONSES, AudioGone, RangeNotSatisfiable, TaskNotFound, responses
from app.views import get_task_or_404
from models import Task
from storage import AudioNotFound

router = APIRouter(
    prefix="/asr", tags=["tasks"], responses=VALIDATION_RESPONSES, route_class=ReleasingRoute
)

_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@router.get(
    "/audio/{task_id}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"audio/*": {}}, "description": "The original recording."},
        206: {"content": {"audio/*": {}}, "description": "The requested byte range."},
        307: {"description": "With S3_PRESIGN=true: a short-lived URL of the bucket's copy."},
        **responses(TaskNotFound, AudioGone, RangeNotSatisfiable),
    },
)
def download_audio(
    task_id: uuid.UUID,
    session: SessionDep,
    storage: StorageDep,
    caller: BrowserReadCaller,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """The uploaded recording as it was received; honours a single `Range: bytes=` range. The
    key may be sent as `?api_key=` (an `<audio>` element cannot send headers)."""
    task = get_task_or_404(session, task_id, caller)
    if task.audio_key is None:
        raise AudioGone(f"the recording was removed: {task.audio_removed_reason or 'retention'}")
    try:
        size = storage.size(task.audio_key)
    except AudioNotFound:
        raise AudioGone("the recording is no longer stored") from None
    disposition = content_disposition(download_name(task))
    presigned = storage.presigned_url(task.audio_key, task.content_type, disposition)
    if presigned is not None:  # S3_PRESIGN: the bucket serves the bytes (and any Range)
        return RedirectResponse(presigned, status_code=307)
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": disposition}
    byte_range = parse_range(range_header, size)
    if byte_range is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(storage.read_range(task.audio_key, 0, size),
                                 media_type=task.content_type, headers=headers)  # fmt: skip
    start, end = byte_range
    headers["Content-Length"] = str(end - start + 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(storage.read_range(task.audio_key, start, end + 1), status_code=206,
                             media_type=task.content_type, headers=headers)  # fmt: skip


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range, or None to send the whole file.

    Multiple ranges and other units are answered with the whole file, which RFC 9110 allows.
    """
    match = _SINGLE_RANGE.fullmatch((header or "").strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable(f"empty suffix range; the file has {size} bytes", size=size)
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"range {header} is outside the file's {size} bytes", size=size)
    return start, end


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
