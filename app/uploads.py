"""Turning a multipart upload into a stored recording: size checks, probe, hash, save."""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from fastapi import UploadFile
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BadRequest, PayloadTooLarge, UnsupportedMedia, error_response
from app.media import ACCEPTED_FORMATS, MediaInfo, ProbeError, probe
from storage import Storage, recording_key

# Room for the multipart boundaries and the small option fields around the file.
FORM_OVERHEAD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StoredUpload:
    key: str
    filename: str
    size_bytes: int
    sha256: str
    media: MediaInfo


class _HashingReader:
    """Hashes bytes as the storage backend reads them, so the file is read only once."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        self.digest.update(chunk)
        return chunk


def store_upload(
    upload: UploadFile, storage: Storage, task_id: uuid.UUID, seq: int, max_bytes: int,
    max_audio_seconds: int = 0,
) -> StoredUpload:  # fmt: skip
    """Check, probe and store one uploaded file; raises a 4xx AppError for bad input."""
    size = upload.size if upload.size is not None else _measure(upload.file)
    if size == 0:
        raise BadRequest("the uploaded file is empty", accepted=ACCEPTED_FORMATS)
    if size > max_bytes:
        raise too_large(max_bytes)
    try:
        media = probe(upload.file, max_audio_seconds)
    except ProbeError as exc:
        raise UnsupportedMedia(
            f"{upload.filename or 'the upload'}: {exc}", accepted=ACCEPTED_FORMATS
        ) from None
    # Measured, not the header's word; measuring stops just past the limit.
    duration = media.duration_seconds or 0
    if max_audio_seconds and duration > max_audio_seconds:
        raise PayloadTooLarge(
            f"the recording lasts longer than the limit of {max_audio_seconds} s "
            "(MAX_AUDIO_SECONDS)",
            max_audio_seconds=max_audio_seconds,
        )
    key = recording_key(datetime.now(UTC).date(), seq, task_id, media.extension)
    reader = _HashingReader(upload.file)
    written = storage.save(key, reader)  # type: ignore[arg-type]
    return StoredUpload(
        key=key,
        filename=display_name(upload.filename),
        size_bytes=written,
        sha256=reader.digest.hexdigest(),
        media=media,
    )


def display_name(filename: str | None) -> str:
    """The client's name, kept only for display: no directories, no control characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "upload"


def too_large(max_bytes: int) -> PayloadTooLarge:
    limit_mb = max_bytes // (1024 * 1024)
    return PayloadTooLarge(
        f"the upload is larger than the limit of {limit_mb} MB (MAX_UPLOAD_MB)",
        max_upload_mb=limit_mb,
    )


def _measure(file: BinaryIO) -> int:
    file.seek(0, 2)
    size = file.tell()
    file.seek(0)
    return size


class UploadTooLarge(HTTPException):
    """Raised while the body is still arriving; FastAPI lets HTTPException out of form
    parsing, where any other error would become a generic 400."""

    def __init__(self, max_bytes: int) -> None:
        error = too_large(max_bytes)
        super().__init__(413, detail=error.detail)
        self.error = error.error
        self.extra = error.extra


class UploadLimitMiddleware:
    """Refuses over-limit uploads early: by Content-Length before reading, or as soon as the
    streamed body passes the limit, so a huge upload is never spooled to disk in full."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: tuple[str, ...]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_body = max_bytes + FORM_OVERHEAD_BYTES
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            error = too_large(self.max_bytes)
            response = error_response(413, error.error, error.detail, **error.extra)
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise UploadTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
