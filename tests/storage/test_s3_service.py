"""The whole service on STORAGE_BACKEND=s3: uploads go to the bucket, the worker reads them
from there, downloads, deletes and the sweeper work on it, and an unreachable bucket loses
nothing. The bucket is moto's S3 server (the declared stand-in) or TEST_S3_ENDPOINT."""

import hashlib
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

import jobs.upkeep.sweeper
from app.config import Settings, get_settings
from app.main import create_app
from jobs.upkeep.reconciler import reconcile
from jobs.upkeep.sweeper import sweep
from tests.utils.api import result, submitted
from tests.utils.audio import audio_file
from tests.utils.processes import free_port
from tests.utils.records import stored_files, task_count, task_row
from tests.utils.s3 import S3Endpoint, object_keys

JFK = audio_file("jfk.flac")


@pytest.fixture
def s3_client(s3_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(s3_settings)) as client:
        yield client


def bucket_keys(s3: S3Endpoint, settings: Settings) -> list[str]:
    return [key.removeprefix(settings.S3_PREFIX) for key in object_keys(s3, settings.S3_PREFIX)]


def bucket_down(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The same settings, with the bucket's endpoint a port nothing listens on."""
    monkeypatch.setenv("S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    return get_settings()


def test_a_recording_lives_in_the_bucket_from_submit_to_delete(
    s3_client: TestClient, s3_settings: Settings, s3: S3Endpoint, run_worker: Callable[[], None]
):
    task_id = submitted(s3_client, JFK)
    (key,) = bucket_keys(s3, s3_settings)
    assert key.endswith(f"_{task_id}.flac") and stored_files(s3_settings) == []

    run_worker()

    done = result(s3_client, task_id)
    assert done["status"] == "done", done
    assert "ask not what your country can do for you" in done["text"].lower()
    original = JFK.read_bytes()
    whole = s3_client.get(f"/api/v1/asr/audio/{task_id}")
    assert whole.status_code == 200 and whole.content == original
    part = s3_client.get(f"/api/v1/asr/audio/{task_id}", headers={"Range": "bytes=1000-66535"})
    assert part.status_code == 206 and part.content == original[1000:66536]
    assert part.headers["content-range"] == f"bytes 1000-66535/{len(original)}"
    tail = s3_client.get(f"/api/v1/asr/audio/{task_id}", headers={"Range": "bytes=-10"})
    assert tail.content == original[-10:]

    assert s3_client.delete(f"/api/v1/asr/task/{task_id}").status_code == 204
    assert bucket_keys(s3, s3_settings) == []
    assert stored_files(s3_settings) == []


def test_presigned_downloads_come_from_the_bucket(
    s3: S3Endpoint, monkeypatch: pytest.MonkeyPatch, s3_settings: Settings
):
    monkeypatch.setenv("S3_PRESIGN", "true")
    get_settings.cache_clear()
    with TestClient(create_app(get_settings())) as client:
        task_id = submitted(client, JFK)
        redirect = client.get(f"/api/v1/asr/audio/{task_id}", follow_redirects=False)
    assert redirect.status_code == 307
    location = redirect.headers["location"]
    assert location.startswith(f"{s3.url}/{s3.bucket}/") and "X-Amz-Signature=" in location
    fetched = httpx.get(location, headers={"Range": "bytes=0-99"})
    assert fetched.status_code == 206 and fetched.content == JFK.read_bytes()[:100]
    whole = httpx.get(location)
    assert hashlib.sha256(whole.content).digest() == hashlib.sha256(JFK.read_bytes()).digest()
    assert whole.headers["content-disposition"].startswith('attachment; filename="jfk.flac"')


def test_an_unreachable_bucket_is_a_503_naming_the_storage_and_keeps_nothing(
    s3_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    with TestClient(create_app(bucket_down(monkeypatch))) as client:
        refused = client.post("/api/v1/asr/submit", files={"audio": ("jfk.flac", JFK.read_bytes())})
        health = client.get("/health")
        openai = client.post("/v1/audio/transcriptions", data={"model": "whisper-1"},
                             files={"file": ("jfk.flac", JFK.read_bytes())})  # fmt: skip
    assert refused.status_code == 503, refused.text
    assert refused.json()["dependency"] == "storage"
    assert refused.json()["detail"] == "the storage is unavailable; retry shortly"
    assert task_count(s3_settings) == 0
    assert health.status_code == 503
    assert health.json()["storage"].startswith("s3 unavailable")
    assert any(reason.startswith("storage s3 unavailable") for reason in health.json()["reasons"])
    assert openai.status_code == 503 and "storage" in openai.json()["error"]["message"]


@pytest.mark.parametrize("tasks", [1, 2], ids=["alone", "batch"])
def test_a_worker_that_cannot_reach_the_bucket_puts_the_task_back_uncharged(
    s3_client: TestClient, s3_settings: Settings, monkeypatch: pytest.MonkeyPatch,
    run_worker: Callable[[], None], tasks: int,
):  # fmt: skip
    task_ids = [submitted(s3_client, JFK) for _ in range(tasks)]
    reachable = s3_settings.S3_ENDPOINT_URL
    bucket_down(monkeypatch)

    run_worker()

    rows = [task_row(s3_settings, task_id) for task_id in task_ids]
    assert [(r.status, r.attempts, r.error) for r in rows] == [("queued", 0, None)] * tasks
    monkeypatch.setenv("S3_ENDPOINT_URL", reachable)
    get_settings.cache_clear()
    assert sorted(reconcile().requeued) == sorted(r.id for r in rows)
    run_worker()
    for task_id in task_ids:
        done = result(s3_client, task_id)
        assert done["status"] == "done" and "country" in done["text"]
        assert task_row(s3_settings, task_id).attempts == 1


def test_delete_while_the_bucket_is_down_leaves_the_recording_to_the_sweeper(
    s3_client: TestClient, s3_settings: Settings, s3: S3Endpoint,
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    task_id = submitted(s3_client, JFK)
    reachable = s3_settings.S3_ENDPOINT_URL
    with TestClient(create_app(bucket_down(monkeypatch))) as client:
        assert client.delete(f"/api/v1/asr/task/{task_id}").status_code == 204
        assert client.get(f"/api/v1/asr/result/{task_id}").status_code == 404
    (orphan,) = bucket_keys(s3, s3_settings)
    monkeypatch.setenv("S3_ENDPOINT_URL", reachable)
    get_settings.cache_clear()
    monkeypatch.setattr(jobs.upkeep.sweeper, "ORPHAN_GRACE", jobs.upkeep.sweeper.ORPHAN_GRACE * 0)
    assert [o.key for o in sweep(settings=get_settings()).orphans] == [orphan]
    assert bucket_keys(s3, s3_settings) == []


def test_the_sweeper_prunes_the_bucket_but_never_a_task_in_flight(
    s3_client: TestClient, s3_settings: Settings, s3: S3Endpoint,
    monkeypatch: pytest.MonkeyPatch, run_worker: Callable[[], None],
):  # fmt: skip
    finished = submitted(s3_client, JFK)
    run_worker()
    waiting = submitted(s3_client, JFK)
    orphan = "2026-01-01_000001_00000000-0000-0000-0000-000000000000.wav"
    s3.client().put_object(Bucket=s3.bucket, Key=s3_settings.S3_PREFIX + orphan, Body=b"x")
    monkeypatch.setattr(jobs.upkeep.sweeper, "ORPHAN_GRACE", jobs.upkeep.sweeper.ORPHAN_GRACE * 0)

    report = sweep(settings=s3_settings.model_copy(update={"MAX_RECORDINGS": 0,
                                                           "RECORDINGS_MAX_BYTES": 1}))  # fmt: skip

    assert [o.key for o in report.orphans] == [orphan]
    assert [str(r.task_id) for r in report.recordings] == [finished]
    (kept,) = bucket_keys(s3, s3_settings)
    assert kept.endswith(f"_{waiting}.flac")
    assert task_row(s3_settings, finished).audio_key is None
    assert s3_client.get(f"/api/v1/asr/audio/{finished}").status_code == 410
