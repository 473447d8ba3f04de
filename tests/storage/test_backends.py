"""Both storage backends, local and S3, held to the same assertions (S3: moto's server, or
TEST_S3_ENDPOINT)."""

import hashlib
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import AudioNotFound, LocalStorage, Storage, StorageUnavailable
from storage.s3 import S3Storage
from tests.utils.processes import free_port
from tests.utils.s3 import S3Endpoint, empty_prefix, new_prefix, object_keys, unfinished_uploads

MB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "recordings")
        return
    s3: S3Endpoint = request.getfixturevalue("s3")
    prefix = new_prefix()
    request.getfixturevalue("monkeypatch").setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield S3Storage(s3.bucket, prefix, s3.url, s3.region, "path")
    empty_prefix(s3, prefix)


@pytest.fixture(autouse=True)
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


class Generated(io.RawIOBase):
    """`size` deterministic bytes, made as they are read and never held: a stand-in for a
    large upload that costs no memory of its own. Not seekable, like the API's reader."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        count = self.left if size is None or size < 0 else min(size, self.left)
        chunk = bytes([self.left % 251]) * count
        self.left -= count
        self.digest.update(chunk)
        return chunk


def test_save_open_size_exists_delete(storage: Storage):
    payload = bytes(range(256)) * (12 * 4096) + b"tail"  # 12 MiB + 4: more than one S3 part
    assert storage.save("a.wav", io.BytesIO(payload)) == len(payload)
    assert storage.exists("a.wav") and storage.size("a.wav") == len(payload)
    with storage.open("a.wav") as stored:
        assert stored.read() == payload
    assert [(o.key, o.size) for o in storage.list()] == [("a.wav", len(payload))]
    assert storage.delete("a.wav") is True
    assert not storage.exists("a.wav") and list(storage.list()) == []
    assert storage.delete("a.wav") is False
    with pytest.raises(AudioNotFound):
        storage.open("a.wav")
    with pytest.raises(AudioNotFound):
        storage.size("a.wav")


def test_an_opened_recording_seeks_like_a_file(storage: Storage):
    """What a demuxer does: read the head, jump to the end for an index, come back."""
    payload = bytes(range(256)) * 8192  # 2 MiB
    storage.save("b.mp4", io.BytesIO(payload))
    with storage.open("b.mp4") as stored:
        assert stored.seekable()
        assert stored.read(10) == payload[:10]
        assert stored.seek(-100, io.SEEK_END) == len(payload) - 100
        assert stored.read() == payload[-100:]
        assert stored.read(5) == b""
        stored.seek(1_500_000)
        assert stored.read(70_000) == payload[1_500_000:1_570_000]
        stored.seek(3, io.SEEK_SET)
        stored.seek(4, io.SEEK_CUR)
        assert stored.tell() == 7 and stored.read(3) == payload[7:10]


@pytest.mark.parametrize(("start", "stop"), [(0, 1), (5, 1_048_581), (2_000_000, 2_097_152)])
def test_read_range_is_byte_exact(storage: Storage, start: int, stop: int):
    payload = bytes(range(256)) * 8192
    storage.save("c.flac", io.BytesIO(payload))
    assert b"".join(storage.read_range("c.flac", start, stop)) == payload[start:stop]


def test_a_failed_save_leaves_nothing_behind(storage: Storage, request: pytest.FixtureRequest):
    class BreaksAfter20MB(Generated):
        def read(self, size: int | None = -1) -> bytes:
            if self.left < 20 * MB:
                raise OSError("client went away")
            return super().read(size)

    with pytest.raises(OSError, match="client went away"):
        storage.save("d.mp3", BreaksAfter20MB(40 * MB))  # parts already sent on S3
    assert list(storage.list()) == [] and not storage.exists("d.mp3")
    if isinstance(storage, S3Storage):
        assert unfinished_uploads(request.getfixturevalue("s3"), storage.prefix) == []
    else:
        assert not any(Path(storage.root).iterdir())  # type: ignore[attr-defined]


@pytest.mark.parametrize("key", ["../escape.wav", "sub/dir.wav", ".hidden", ""])
def test_keys_cannot_leave_the_root(storage: Storage, key: str):
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.save(key, io.BytesIO(b"z"))


def test_memory_stays_flat_for_a_large_recording(storage: Storage):
    """96 MiB in and out; the Python heap never holds more than a few parts of it."""
    source = Generated(96 * MB)
    tracemalloc.start()
    try:
        assert storage.save("e.wav", source) == 96 * MB
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        with storage.open("e.wav") as stored:
            while chunk := stored.read(256 * 1024):
                digest.update(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == source.digest.hexdigest()
    assert upload_peak < 48 * MB, f"upload held {upload_peak / MB:.0f} MiB"
    assert download_peak < 8 * MB, f"download held {download_peak / MB:.0f} MiB"


def test_list_names_only_this_storage_s_recordings(s3: S3Endpoint):
    prefix = new_prefix()
    storage = S3Storage(s3.bucket, prefix, s3.url, s3.region, "path")
    client = s3.client()
    try:
        storage.save("f.ogg", io.BytesIO(b"ours"))
        client.put_object(Bucket=s3.bucket, Key=f"{prefix}nested/g.ogg", Body=b"not ours")
        client.put_object(Bucket=s3.bucket, Key=f"other-{prefix}h.ogg", Body=b"not ours")
        assert [o.key for o in storage.list()] == ["f.ogg"]
        assert f"{prefix}f.ogg" in object_keys(s3, prefix)
    finally:
        empty_prefix(s3, prefix)
        empty_prefix(s3, f"other-{prefix}")


def test_an_unreachable_bucket_is_storage_unavailable_never_not_found(s3: S3Endpoint):
    dead = S3Storage(s3.bucket, "x/", f"http://127.0.0.1:{free_port()}", s3.region, "path")
    for action in (
        dead.check, lambda: dead.size("a.wav"), lambda: dead.exists("a.wav"),
        lambda: dead.open("a.wav"), lambda: dead.delete("a.wav"), lambda: list(dead.list()),
        lambda: dead.save("a.wav", io.BytesIO(b"x")),
    ):  # fmt: skip
        with pytest.raises(StorageUnavailable, match=s3.bucket):
            action()


def test_a_missing_bucket_is_storage_unavailable(s3: S3Endpoint):
    missing = S3Storage(f"{s3.bucket}-missing", "", s3.url, s3.region, "path")
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        missing.check()
    with pytest.raises(StorageUnavailable):
        missing.save("a.wav", io.BytesIO(b"x"))


def test_an_unwritable_local_root_is_storage_unavailable(tmp_path: Path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageUnavailable):
        LocalStorage(tmp_path / "file" / "recordings").check()
