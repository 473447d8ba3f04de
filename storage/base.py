"""The storage interface and the naming rule for stored recordings."""

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024


class AudioNotFound(Exception):
    """The key names no stored object (never uploaded, or already pruned)."""


class StorageUnavailable(Exception):
    """The backend cannot be reached or refuses to work (bucket down, wrong credentials): a
    503 naming the storage in the API, a task put back for later in a worker. Never the
    client's fault, never a reason to fail a task."""


def recording_key(day: date, seq: int, task_id: uuid.UUID, extension: str) -> str:
    """`YYYY-MM-DD_<seq>_<task_id>.<ext>`; every part comes from us, never from the client."""
    return f"{day.isoformat()}_{seq:06d}_{task_id}.{extension}"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified_at: datetime


class Storage(ABC):
    """Save, read and delete opaque objects by key."""

    @abstractmethod
    def save(self, key: str, stream: BinaryIO) -> int:
        """Copy `stream` to `key` in chunks; return the number of bytes written.

        A failed save leaves nothing behind under `key`.
        """

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A seekable binary file for reading; raises AudioNotFound."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove `key`; True if something was removed."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; raises AudioNotFound."""

    @abstractmethod
    def list(self) -> Iterator[StoredObject]:
        """Every stored object (for the retention sweeper's orphan check)."""

    def read_range(self, key: str, start: int, stop: int) -> Iterator[bytes]:
        """Bytes `start` up to `stop` (exclusive) in chunks; opened only when iterated, so an
        abandoned response leaks nothing."""
        with self.open(key) as stored:
            stored.seek(start)
            remaining = stop - start
            while remaining > 0 and (chunk := stored.read(min(CHUNK_SIZE, remaining))):
                remaining -= len(chunk)
                yield chunk

    def presigned_url(self, key: str, content_type: str, disposition: str) -> str | None:
        """A short-lived URL a client can fetch `key` from directly, or None where the
        backend has no such thing (then the API streams the bytes itself)."""
        return None

    @abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailable unless objects can be stored now (for /health)."""
