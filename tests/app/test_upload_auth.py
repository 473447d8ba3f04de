"""Uploads are refused from their headers, before the body is read: a caller without a
usable key cannot make the server receive a large body for a 401 (a live uvicorn server,
auth on, and a client that streams its body slowly)."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app import auth, upload_auth
from app.main import create_app
from models import ApiKey, Scope
from models.db import session_scope
from tests.utils.api import SUBMIT, bearer, new_key, submit, submitted
from tests.utils.audio import audio_file

BOUNDARY = "slow-upload-boundary"
CHUNK = b"\0" * (256 * 1024)
CHUNKS = 400  # 100 MB: read in full, it takes seconds, and every chunk is taken
TRANSCRIPTIONS = "/v1/audio/transcriptions"


@dataclass
class SlowBody:
    """A multipart upload of CHUNKS chunks, sent with a pause before each; counts what the
    client was able to send."""

    file_field: str
    sent: int = 0

    def __iter__(self) -> Iterator[bytes]:
        yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{self.file_field}"; '
               'filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n').encode()  # fmt: skip
        for _ in range(CHUNKS):
            time.sleep(0.002)
            self.sent += 1
            yield CHUNK
        yield f"\r\n--{BOUNDARY}--\r\n".encode()


def slow_upload(server: str, path: str, file_field: str, headers: dict[str, str]):
    body = SlowBody(file_field)
    started = time.monotonic()
    response = httpx.post(
        f"{server}{path}", content=body, timeout=60,
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )  # fmt: skip
    return response, body.sent, time.monotonic() - started


@pytest.mark.parametrize("who", ["no key", "unknown key", "revoked key", "key without the scope"])
@pytest.mark.parametrize(
    ("path", "file_field"), [(SUBMIT, "audio"), (TRANSCRIPTIONS, "file")], ids=["native", "openai"]
)
def test_an_upload_with_an_unusable_key_is_refused_before_its_body_is_read(
    api_server, settings, who, path, file_field
):
    response, sent, seconds = slow_upload(api_server, path, file_field, key_headers(settings, who))

    status = 403 if who == "key without the scope" else 401
    assert response.status_code == status, response.text
    # Answered while the client had sent a small part (what the sockets buffer), not 100 MB;
    # the connection is closed, not drained of the rest of the body.
    assert sent < CHUNKS // 4, f"{sent} of {CHUNKS} chunks were sent before the answer"
    assert seconds < 5 and response.headers["connection"] == "close"
    if path == SUBMIT:
        assert response.json()["error"] == ("forbidden" if status == 403 else "unauthorized")
    else:  # OpenAI's shape, which its SDKs parse
        assert response.json()["error"]["type"] == (
            "permission_error" if status == 403 else "invalid_request_error"
        )


def key_headers(settings, who: str) -> dict[str, str]:
    match who:
        case "no key":
            return {}
        case "unknown key":
            return bearer("asr_not-a-real-key")
        case "revoked key":
            key = new_key(settings, "gone", [Scope.SUBMIT, Scope.READ])
            with session_scope(settings.DATABASE_URL) as session:
                session.execute(update(ApiKey).values(revoked_at=datetime.now(UTC)))
            return bearer(key)
        case _:
            return {"X-API-Key": new_key(settings, "reader", [Scope.READ])}


def test_an_upload_with_a_valid_key_is_taken(api_server, settings):
    key = new_key(settings, "bot", [Scope.SUBMIT, Scope.READ])
    submitted(api_server, audio_file("jfk.flac"), headers=bearer(key))
    submitter = new_key(settings, "writer", [Scope.SUBMIT])
    # The OpenAI routes answer with the transcript: a key that cannot read is refused early.
    with audio_file("jfk.flac").open("rb") as audio:
        refused = httpx.post(f"{api_server}{TRANSCRIPTIONS}", headers=bearer(submitter),
                             files={"file": ("jfk.flac", audio)}, timeout=30)  # fmt: skip
    assert refused.status_code == 403 and "`read` scope" in refused.json()["error"]["message"]


def test_an_upload_while_the_database_is_down_is_503_naming_it(settings):
    down = settings.model_copy(
        update={
            "AUTH_ENABLED": True,
            "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/asr",
        }
    )
    with TestClient(create_app(down)) as client:
        response = submit(client, audio_file("jfk.flac"), headers=bearer("asr_any-key"))
    assert response.status_code == 503 and response.json()["dependency"] == "database"


def test_an_accepted_upload_looks_its_key_up_once(settings, monkeypatch):
    """The middleware's caller is the route's: one key lookup per upload, not two."""
    lookups: list[str | None] = []
    identify = auth.identify

    async def counted(db, plain, settings):
        lookups.append(plain)
        return await identify(db, plain, settings)

    monkeypatch.setattr(upload_auth, "identify", counted)
    monkeypatch.setattr(auth, "identify", counted)
    key = new_key(settings, "bot", [Scope.SUBMIT, Scope.READ])
    secured = settings.model_copy(update={"AUTH_ENABLED": True})
    with TestClient(create_app(secured)) as client:
        task_id = submitted(client, audio_file("jfk.flac"), headers=bearer(key))
        assert lookups == [key]
        assert client.get(f"/api/v1/asr/result/{task_id}", headers=bearer(key)).status_code == 200
    assert lookups == [key, key]  # a route without the middleware still looks it up
