"""Bad input gets a clear 4xx JSON error, leaves nothing behind, and never a 500."""

import uuid

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from models import Task
from models.db import session_scope
from tests.utils.api import result, submit
from tests.utils.audio import audio_file, normalize
from tests.utils.records import assert_nothing_stored


def test_empty_file_is_400(client, settings, tmp_path):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    response = submit(client, empty)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad request" and "empty" in body["detail"]
    assert "mp3" in body["accepted"]
    assert_nothing_stored(settings)


def test_text_file_named_mp3_is_415_naming_accepted_formats(client, settings, tmp_path):
    fake = tmp_path / "song.mp3"
    fake.write_text("this is a plain text file, not audio\n" * 50)
    response = submit(client, fake)
    assert response.status_code == 415
    body = response.json()
    assert body["error"] == "unsupported media"
    assert "song.mp3" in body["detail"] and "not a recognised audio" in body["detail"]
    assert "wav" in body["accepted"] and "ogg/opus" in body["accepted"]
    assert_nothing_stored(settings)


def test_random_bytes_are_415(client, settings, tmp_path):
    noise = tmp_path / "voice.ogg"
    noise.write_bytes(bytes(range(256)) * 64)
    assert submit(client, noise).status_code == 415
    assert_nothing_stored(settings)


@pytest.fixture
def small_limit_client(settings: Settings):
    with TestClient(create_app(settings.model_copy(update={"MAX_UPLOAD_MB": 1}))) as client:
        yield client


def test_upload_over_the_limit_is_413(small_limit_client, settings, tmp_path):
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * (3 * 1024 * 1024))
    response = submit(small_limit_client, big)
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "upload too large" and "1 MB" in body["detail"]
    assert body["max_upload_mb"] == 1
    assert_nothing_stored(settings)


def test_streamed_upload_without_length_is_cut_off_at_the_limit(small_limit_client, settings):
    """No Content-Length (chunked): the limit applies while the body streams in."""
    boundary = "limitboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()

    def body():
        yield head
        for _ in range(40):  # 2.5 MB in 64 KB chunks
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    response = small_limit_client.post(
        "/api/v1/asr/submit",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "upload too large"
    assert_nothing_stored(settings)


def test_missing_audio_field_is_422(client):
    response = client.post("/api/v1/asr/submit", data={"language": "en"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid request"
    assert body["detail"][0]["loc"] == ["body", "audio"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("language", "klingon", "one of: af, am"),
        ("task", "summarize", "'transcribe' or 'translate'"),
        ("beam_size", "0", "greater than or equal to 1"),
        ("beam_size", "99", "less than or equal to 20"),
        ("word_timestamps", "maybe", "valid boolean"),
    ],
)
def test_invalid_option_is_422_naming_the_allowed_values(client, settings, field, value, expected):
    response = submit(client, audio_file("jfk.flac"), **{field: value})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field] and expected in error["msg"]
    assert_nothing_stored(settings)


def test_unknown_task_is_404(client):
    response = client.get(f"/api/v1/asr/result/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"] == "task not found"


def test_malformed_task_id_is_422(client):
    response = client.get("/api/v1/asr/result/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "task_id"]


def test_a_truncated_mp3_is_transcribed_as_far_as_it_goes(client, run_worker, tmp_path):
    """The first 50 kB of the 59.9-s MP3 (about 12.5 s): taken, and transcribed up to where
    it was cut, its length measured, not the header's 59.9 s."""
    truncated = tmp_path / "cut.mp3"
    truncated.write_bytes(audio_file("multilingual.mp3").read_bytes()[:50_000])
    response = submit(client, truncated)
    assert response.status_code == 202, response.text
    run_worker()
    task = result(client, response.json()["task_id"])
    assert task["status"] == "done", task
    assert task["duration"] == pytest.approx(12.5, abs=1.0)
    assert "permission is hereby granted" in normalize(task["text"])


def test_audio_lost_before_processing_fails_with_a_reason(client, run_worker, settings):
    """A task whose file vanished ends `failed` with a readable reason and a history line;
    retrying it then answers 410."""
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    for path in settings.recordings_path.iterdir():
        path.unlink()
    run_worker()
    task = result(client, task_id)
    assert task["status"] == "failed"
    assert task["error"] == "audio file is missing from storage"
    assert task["retry_url"].endswith(f"/api/v1/asr/retry/{task_id}")
    retry = client.post(task["retry_url"])
    assert retry.status_code == 410 and retry.json()["error"] == "audio no longer stored"
    lines = (settings.logs_path / "asr_history.jsonl").read_text().splitlines()
    assert len(lines) == 1 and '"status": "failed"' in lines[0]


def test_submit_while_redis_is_down_is_503_and_the_task_is_not_left_queued(settings: Settings):
    down = settings.model_copy(update={"REDIS_URL": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(down)) as client:
        response = submit(client, audio_file("jfk.flac"))
        assert response.status_code == 503
        body = response.json()
        assert body["error"] == "service unavailable" and "Redis" in body["detail"]
        with session_scope(settings.DATABASE_URL) as session:
            task = session.get(Task, uuid.UUID(body["task_id"]))
            assert task is not None and task.status == "failed"
            assert task.error.startswith("could not be queued")
            assert (settings.recordings_path / task.audio_key).exists()  # kept for a retry


@pytest.mark.parametrize("field", ["hotwords", "initial_prompt"])
def test_control_characters_in_text_options_are_422_not_500(client, settings, field):
    response = submit(client, audio_file("jfk.flac"), **{field: "Comfy\x00UI"})
    assert response.status_code == 422
    assert "control characters" in response.json()["detail"][0]["msg"]
    assert_nothing_stored(settings)


def test_a_network_stream_description_is_refused_without_connecting(client, settings, tmp_path):
    """An SDP file would make FFmpeg open sockets; the probe allows local reads only."""
    import time

    sdp = tmp_path / "stream.mp3"
    sdp.write_text(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 5004 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n"
    )
    started = time.monotonic()
    response = submit(client, sdp)
    assert response.status_code == 415
    assert time.monotonic() - started < 30  # reading the network would wait for packets
    assert_nothing_stored(settings)


def test_result_while_redis_is_down_is_503_naming_it(client, settings: Settings):
    task_id = submit(client, audio_file("hotwords.mp3")).json()["task_id"]
    down = settings.model_copy(update={"REDIS_URL": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(down)) as broken:
        response = broken.get(f"/api/v1/asr/result/{task_id}")
    assert response.status_code == 503
    assert response.json() == {"error": "service unavailable",
                               "detail": "the redis is unavailable; retry shortly",
                               "dependency": "redis"}  # fmt: skip


def test_result_while_the_database_is_down_is_503_naming_it(settings: Settings):
    down = settings.model_copy(
        update={"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/asr"}
    )
    with TestClient(create_app(down)) as broken:
        response = broken.get(f"/api/v1/asr/result/{uuid.uuid4()}")
    assert response.status_code == 503 and response.json()["dependency"] == "database"
