"""Idempotent submits: a repeated Idempotency-Key, concurrent duplicates, and DEDUPE."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from models import Scope
from tests.utils.api import bearer, new_key, result, submit
from tests.utils.audio import JFK_LINE, audio_file, normalize
from tests.utils.records import stored_files, task_count


def test_a_repeated_idempotency_key_returns_the_first_task(client, settings):
    first = submit(client, audio_file("jfk.flac"), headers={"Idempotency-Key": "update-42"})
    assert first.status_code == 202, first.text
    assert "idempotent-replayed" not in first.headers
    task_id = first.json()["task_id"]

    again = submit(client, audio_file("jfk.flac"), headers={"Idempotency-Key": "update-42"})
    # Same key = same request, even with another file: the original task comes back.
    other_file = submit(
        client, audio_file("hotwords.mp3"), headers={"Idempotency-Key": "update-42"}
    )

    for replay in (again, other_file):
        assert replay.status_code == 200, replay.text
        assert replay.headers["idempotent-replayed"] == "true"
        body = replay.json()
        assert body["task_id"] == task_id and body["status"] == "queued"
        assert body["filename"] == "jfk.flac"
        assert body["result_url"].endswith(f"/api/v1/asr/result/{task_id}")
    assert task_count(settings) == 1 and len(stored_files(settings)) == 1
    assert (
        submit(client, audio_file("jfk.flac"), headers={"Idempotency-Key": "update-43"}).status_code
        == 202
    )
    assert task_count(settings) == 2


@pytest.mark.parametrize("key", ["", "k" * 256, "caf\u00e9", "tab\there"])
def test_an_invalid_idempotency_key_is_422(client, settings, key):
    headers = {"Idempotency-Key": key.encode("latin-1")}
    response = submit(client, audio_file("jfk.flac"), headers=headers)  # type: ignore[dict-item]
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert task_count(settings) == 0


def test_the_same_key_from_two_callers_makes_two_tasks(settings):
    on = settings.model_copy(update={"AUTH_ENABLED": True})
    alice = new_key(settings, "alice", [Scope.SUBMIT, Scope.READ])
    bob = new_key(settings, "bob", [Scope.SUBMIT, Scope.READ])
    with TestClient(create_app(on)) as client:
        answers = [
            submit(
                client, audio_file("jfk.flac"), headers={"Idempotency-Key": "same", **bearer(key)}
            )
            for key in (alice, bob, alice, bob)
        ]
    assert [a.status_code for a in answers] == [202, 202, 200, 200]
    ids = [a.json()["task_id"] for a in answers]
    assert ids[0] != ids[1] and ids[2] == ids[0] and ids[3] == ids[1]
    assert task_count(settings) == 2 and len(stored_files(settings)) == 2


def test_concurrent_submits_with_one_key_create_one_task(client, settings):
    jfk, burst = audio_file("jfk.flac"), {"Idempotency-Key": "burst"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: submit(client, jfk, headers=burst), range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [202], [a.text for a in answers]
    assert len({a.json()["task_id"] for a in answers}) == 1
    assert task_count(settings) == 1 and len(stored_files(settings)) == 1


@pytest.fixture
def deduping(settings: Settings):
    with TestClient(create_app(settings.model_copy(update={"DEDUPE": True}))) as client:
        yield client


def test_dedupe_returns_the_finished_task_for_identical_audio(deduping, run_worker, settings):
    jfk = audio_file("jfk.flac")
    task_id = submit(deduping, jfk).json()["task_id"]
    # Not yet done: an identical submit is a new task (only `done` tasks are reused).
    pending = submit(deduping, jfk)
    assert pending.status_code == 202 and pending.json()["task_id"] != task_id
    run_worker()
    assert task_count(settings) == 2 and len(stored_files(settings)) == 2

    again = submit(deduping, jfk, name="again.flac")

    assert again.status_code == 200, again.text
    assert again.headers["deduplicated"] == "true"
    body = again.json()
    assert body["task_id"] in (task_id, pending.json()["task_id"])
    assert body["status"] == "done" and JFK_LINE in normalize(body["text"])
    assert task_count(settings) == 2 and len(stored_files(settings)) == 2

    other_options = submit(deduping, jfk, beam_size="2")
    assert other_options.status_code == 202
    assert task_count(settings) == 3 and len(stored_files(settings)) == 3
    assert result(deduping, other_options.json()["task_id"])["status"] == "queued"


def test_without_dedupe_identical_audio_is_transcribed_again(client, run_worker, settings):
    submit(client, audio_file("jfk.flac"))
    run_worker()
    assert submit(client, audio_file("jfk.flac")).status_code == 202
    assert task_count(settings) == 2


def test_dedupe_never_hands_one_key_the_task_of_another(settings, run_worker):
    """DEDUPE reuses the caller's own finished tasks only: key B sending A's recording gets a
    task of its own, transcribed for it, and never A's id or text."""
    on = settings.model_copy(update={"AUTH_ENABLED": True, "DEDUPE": True})
    alice = new_key(settings, "alice", [Scope.SUBMIT, Scope.READ])
    bob = new_key(settings, "bob", [Scope.SUBMIT, Scope.READ])
    jfk = audio_file("jfk.flac")
    with TestClient(create_app(on)) as client:
        alices = submit(client, jfk, headers=bearer(alice)).json()["task_id"]
        run_worker()
        again = submit(client, jfk, headers=bearer(alice))
        assert again.status_code == 200 and again.json()["task_id"] == alices  # her own: reused

        bobs = submit(client, jfk, headers=bearer(bob))
        assert bobs.status_code == 202, bobs.text
        assert "deduplicated" not in bobs.headers and bobs.json()["task_id"] != alices
        assert bobs.json()["status"] == "queued" and "text" not in bobs.json()
        assert client.get(f"/api/v1/asr/result/{alices}", headers=bearer(bob)).status_code == 404
    assert task_count(settings) == 2
