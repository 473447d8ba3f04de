"""Local filesystem backend: one flat directory of recordings."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from storage.base import CHUNK_SIZE, AudioNotFound, Storage, StorageUnavailable, StoredObject


class LocalStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save(self, key: str, stream: BinaryIO) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        target = self._path(key)
        # Write to a temporary name and rename, so a reader never sees half a file.
        fd, partial = tempfile.mkstemp(dir=self.root, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, CHUNK_SIZE)
                size = out.tell()
            os.chmod(partial, 0o644)  # mkstemp makes it private; a worker may be another user
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return size

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise AudioNotFound(key) from None

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise AudioNotFound(key) from None

    def list(self) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if path.name.startswith(".") or not path.is_file():
                continue  # uploads in progress are hidden `.upload-*.part` files
            stat = path.stat()
            yield StoredObject(path.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"{self.root}: {exc.strerror}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"{self.root} is not writable")

    def _path(self, key: str) -> Path:
        # Keys are ours, but refuse anything that could leave the root all the same.
        if not key or "/" in key or "\\" in key or key.startswith("."):
            raise ValueError(f"invalid storage key: {key!r}")
        return self.root / key
