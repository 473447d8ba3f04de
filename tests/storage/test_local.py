"""The local filesystem backend of the storage interface."""

import io
import uuid
from datetime import date
from pathlib import Path

import pytest

from storage import AudioNotFound, LocalStorage, recording_key


def test_recording_key_is_date_seq_task_id_and_our_extension():
    task_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    key = recording_key(date(2026, 11, 21), 42, task_id, "flac")
    assert key == f"2026-11-21_000042_{task_id}.flac"


def test_save_open_size_exists_delete(tmp_path: Path):
    storage = LocalStorage(tmp_path / "recordings")
    payload = b"x" * (3 * 1024 * 1024 + 17)
    assert storage.save("a.wav", io.BytesIO(payload)) == len(payload)
    assert storage.exists("a.wav") and storage.size("a.wav") == len(payload)
    with storage.open("a.wav") as stored:
        assert stored.read() == payload
    assert storage.delete("a.wav") is True
    assert not (tmp_path / "recordings" / "a.wav").exists()
    assert storage.delete("a.wav") is False
    with pytest.raises(AudioNotFound):
        storage.open("a.wav")
    with pytest.raises(AudioNotFound):
        storage.size("a.wav")


class _Broken(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        if self.tell() > 0:
            raise OSError("client went away")
        return super().read(1024)


def test_failed_save_leaves_nothing_behind(tmp_path: Path):
    storage = LocalStorage(tmp_path)
    with pytest.raises(OSError, match="client went away"):
        storage.save("b.mp3", _Broken(b"y" * 4096))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["../escape.wav", "sub/dir.wav", ".hidden", ""])
def test_keys_cannot_leave_the_root(tmp_path: Path, key: str):
    with pytest.raises(ValueError, match="invalid storage key"):
        LocalStorage(tmp_path).save(key, io.BytesIO(b"z"))
