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
