"""What only the local filesystem backend does (tests/storage/test_backends.py holds what
both backends share)."""

import io
import uuid
from datetime import date
from pathlib import Path

from storage import LocalStorage, recording_key


def test_recording_key_is_date_seq_task_id_and_our_extension():
    task_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    key = recording_key(date(2026, 11, 21), 42, task_id, "flac")
    assert key == f"2026-11-21_000042_{task_id}.flac"


def test_a_saved_recording_is_readable_by_other_users(tmp_path: Path):
    storage = LocalStorage(tmp_path)
    storage.save("a.wav", io.BytesIO(b"x"))
    assert (tmp_path / "a.wav").stat().st_mode & 0o044 == 0o044
