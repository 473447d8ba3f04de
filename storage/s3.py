"""Object storage backend: recordings in an S3 bucket (AWS, MinIO, Ceph, R2, GCS interop).

boto3 was chosen by measurement (docs/PERFORMANCE.md, "Object storage client"): it reads
credentials the way every AWS tool does (environment, profile, instance role), and uploads
of any size at flat memory through its multipart transfer manager. It is imported only when
this backend is configured, so a local-storage API does not pay for it at start-up.
"""

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error

from storage.base import CHUNK_SIZE, AudioNotFound, Storage, StorageUnavailable, StoredObject

# Parts of 8 MiB, at most four in flight and four more read ahead: an upload of any size
# holds about 64 MiB, however large the file.
PART_BYTES = 8 * 1024 * 1024
UPLOAD_THREADS = 4
# A read that breaks mid-stream (a connection reset, a timeout) is resumed where it
# stopped, this many times, before the storage counts as unavailable.
READ_ATTEMPTS = 4
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class S3Storage(Storage):
    def __init__(
        self, bucket: str, prefix: str = "", endpoint_url: str = "", region: str = "",
        addressing_style: str = "auto", presign_seconds: int = 0,
    ) -> None:  # fmt: skip
        self.bucket = bucket
        self.prefix = prefix.lstrip("/")
        if self.prefix and not self.prefix.endswith("/"):
            self.prefix += "/"
        self.presign_seconds = presign_seconds
        session = boto3.session.Session()
        if addressing_style == "auto":
            addressing_style = "path" if endpoint_url else "virtual"
        config = Config(
            s3={"addressing_style": addressing_style},
            # SigV4 everywhere, presigned URLs included (botocore may presign with the
            # retired SigV2, which newer AWS regions and some S3 servers refuse).
            signature_version="s3v4",
            connect_timeout=3,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,
        )
        self.client: Any = session.client(
            "s3", endpoint_url=endpoint_url or None,
            region_name=region or session.region_name or "us-east-1", config=config,
        )  # fmt: skip
        self.transfer = TransferConfig(
            multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES,
            max_concurrency=UPLOAD_THREADS, io_chunksize=CHUNK_SIZE,
        )  # fmt: skip
        # Not a constructor argument of boto3's TransferConfig, but read by s3transfer: the
        # parts read ahead of the uploading threads.
        self.transfer.max_in_memory_upload_chunks = UPLOAD_THREADS

    def __repr__(self) -> str:
        return f"S3Storage(s3://{self.bucket}/{self.prefix})"

    def save(self, key: str, stream: BinaryIO) -> int:
        # Read once, front to back (the API hashes what is read); a failed multipart upload
        # is aborted by the transfer manager, so nothing is left under the key.
        counted = _CountingReader(stream)
        try:
            with self._errors(key):
                self.client.upload_fileobj(counted, self.bucket, self._object_key(key),
                                           Config=self.transfer)  # fmt: skip
        except StorageUnavailable:
            if counted.failure is not None:  # the source broke, not the bucket
                raise counted.failure from None
            raise
        return counted.count

    def open(self, key: str) -> BinaryIO:
        raw = _RangedReader(self, self._object_key(key), self.size(key))
        return io.BufferedReader(raw, buffer_size=CHUNK_SIZE)

    def read_range(self, key: str, start: int, stop: int) -> Iterator[bytes]:
        if stop <= start:
            return
        with self._errors(key):
            body = self.client.get_object(Bucket=self.bucket, Key=self._object_key(key),
                                          Range=f"bytes={start}-{stop - 1}")["Body"]  # fmt: skip
            try:
                yield from body.iter_chunks(CHUNK_SIZE)
            finally:
                body.close()

    def delete(self, key: str) -> bool:
        with self._errors(key):
            if not self.exists(key):
                return False
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))
        return True

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except AudioNotFound:
            return False
        return True

    def size(self, key: str) -> int:
        with self._errors(key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        return int(head["ContentLength"])

    def list(self) -> Iterator[StoredObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        with self._errors(self.prefix):
            for page in pages:
                for entry in page.get("Contents", []):
                    name = entry["Key"][len(self.prefix) :]
                    if name and "/" not in name and not name.startswith("."):
                        yield StoredObject(name, int(entry["Size"]), entry["LastModified"])

    def presigned_url(self, key: str, content_type: str, disposition: str) -> str | None:
        if not self.presign_seconds:
            return None
        with self._errors(key):
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._object_key(key),
                        "ResponseContentType": content_type,
                        "ResponseContentDisposition": disposition},
                ExpiresIn=self.presign_seconds,
            )  # fmt: skip
        return url

    def check(self) -> None:
        with self._errors(""):
            self.client.head_bucket(Bucket=self.bucket)

    def _object_key(self, key: str) -> str:
        if not key or "/" in key or "\\" in key or key.startswith("."):
            raise ValueError(f"invalid storage key: {key!r}")
        return self.prefix + key

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """botocore's errors as ours: a missing object is AudioNotFound, anything that stops
        the bucket from working (unreachable, no such bucket, refused credentials, 5xx) is
        StorageUnavailable."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _NOT_FOUND and key:
                raise AudioNotFound(key) from None
            if code in _NOT_FOUND:
                code = "NoSuchBucket"
            raise StorageUnavailable(f"bucket {self.bucket}: {code} {error.get('Message', '')}"
                                     .rstrip()) from exc  # fmt: skip
        except (BotoCoreError, Urllib3Error, OSError) as exc:
            raise StorageUnavailable(f"bucket {self.bucket}: {exc}") from exc
        except Exception as exc:
            # boto3's transfer manager wraps a part's failure in S3UploadFailedError.
            if type(exc).__name__ == "S3UploadFailedError":
                raise StorageUnavailable(f"bucket {self.bucket}: {exc}") from exc
            raise


class _CountingReader:
    """Counts what the upload reads, and remembers a failure of the source itself."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0
        self.failure: Exception | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            chunk = self.raw.read(size)
        except Exception as exc:
            self.failure = exc
            raise
        self.count += len(chunk)
        return chunk


class _RangedReader(io.RawIOBase):
    """A seekable file over one object: reads stream from an open-ended ranged GET, a seek
    elsewhere starts a new one. Memory is the caller's buffer, whatever the object's size."""

    def __init__(self, storage: S3Storage, object_key: str, size: int) -> None:
        self.storage, self.object_key, self.size = storage, object_key, size
        self.position = 0
        self.body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target != self.position:
            self._drop_body()
            self.position = target
        return target

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.size - self.position)
        if wanted <= 0:
            return 0
        for attempt in range(READ_ATTEMPTS):
            try:
                if self.body is None:
                    with self.storage._errors(self.object_key):
                        self.body = self.storage.client.get_object(
                            Bucket=self.storage.bucket, Key=self.object_key,
                            Range=f"bytes={self.position}-",
                        )["Body"]  # fmt: skip
                data = self.body.read(wanted)
                break
            except (BotoCoreError, Urllib3Error, OSError) as exc:
                self._drop_body()  # resume from the same position on a new connection
                if attempt == READ_ATTEMPTS - 1:
                    raise StorageUnavailable(
                        f"bucket {self.storage.bucket}: reading {self.object_key}: {exc}"
                    ) from exc
                time.sleep(0.5 * 2**attempt)
        count = len(data)
        buffer[:count] = data
        self.position += count
        return count

    def close(self) -> None:
        self._drop_body()
        super().close()

    def _drop_body(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None
