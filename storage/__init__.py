"""The only way to touch audio bytes. Workers and the API go through `Storage`: a local
directory on one host, or an S3 bucket shared by hosts that share nothing else."""

from functools import lru_cache

from app.config import Settings
from storage.base import AudioNotFound, Storage, StorageUnavailable, recording_key
from storage.local import LocalStorage


def get_storage(settings: Settings) -> Storage:
    """The configured backend (STORAGE_BACKEND)."""
    if settings.STORAGE_BACKEND == "s3":
        return _s3_storage(settings.S3_BUCKET, settings.S3_PREFIX, settings.S3_ENDPOINT_URL,
                           settings.S3_REGION, settings.S3_ADDRESSING_STYLE,
                           settings.S3_PRESIGN_SECONDS if settings.S3_PRESIGN else 0)  # fmt: skip
    return LocalStorage(settings.recordings_path)


@lru_cache(maxsize=4)
def _s3_storage(
    bucket: str, prefix: str, endpoint_url: str, region: str, style: str, presign_seconds: int
) -> Storage:
    # One client per configuration: a boto3 client is thread-safe, costs tens of milliseconds
    # to make, and keeps its connections alive between jobs.
    from storage.s3 import S3Storage  # boto3 is imported only by those who use it

    return S3Storage(bucket, prefix, endpoint_url, region, style, presign_seconds)


__all__ = [
    "AudioNotFound", "LocalStorage", "Storage", "StorageUnavailable", "get_storage",
    "recording_key",
]  # fmt: skip
