"""The only way to touch audio bytes. Workers and the API go through `Storage`, so a worker on
another host can later be given an object-store backend without code changes."""

from app.config import Settings
from storage.base import AudioNotFound, Storage, recording_key
from storage.local import LocalStorage


def get_storage(settings: Settings) -> Storage:
    """The configured backend; only the local filesystem exists today."""
    return LocalStorage(settings.recordings_path)


__all__ = ["AudioNotFound", "LocalStorage", "Storage", "get_storage", "recording_key"]
