"""API keys: authentication, scopes, isolation between keys, and per-key limits."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import limits
from app.config import Settings
from app.main import create_app
from models import ApiKey, Scope, Task
from models.db import session_scope
from tests.utils.api import basic, bearer, new_key, submit
from tests.utils.audio import audio_file
from tests.utils.paths import ROOT


@pytest.fixture
def secured(settings: Settings):
    on = settings.model_copy(update={"AUTH_ENABLED": True, "SUBMIT_RATE_PER_MINUTE": 5})
    with TestClient(create_app(on)) as client:
        yield client


def test_missing_wrong_and_revoked_keys_are_401(secured, settings):
    key = new_key(settings, "bot", [Scope.SUBMIT, Scope.READ])
    missing = submit(secured, audio_file("jfk.flac"))
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in missing.json()["detail"]
    assert (
        submit(secured, audio_file("jfk.flac"), headers=bearer("asr_not-a-real-key")).status_code
        == 401
    )
    assert submit(secured, audio_file("jfk.flac"), headers=bearer(key)).status_code == 202
    with session_scope(settings.DATABASE_URL) as session:
        session.scalars(select(ApiKey)).one().revoked_at = datetime.now(UTC)
    revoked = submit(secured, audio_file("jfk.flac"), headers=bearer(key))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


def test_keys_are_stored_hashed_with_their_last_use(secured, settings):
    key = new_key(settings, "bot", [Scope.READ])
    secured.get("/api/v1/asr/history", headers={"X-API-Key": key})
    with session_scope(settings.DATABASE_URL) as session:
        row = session.scalars(select(ApiKey)).one()
        assert key not in (row.key_hash, row.visible_prefix) and len(row.key_hash) == 64
        assert row.last_used_at is not None


def test_scopes_are_enforced(secured, settings):
    reader = new_key(settings, "reader", [Scope.READ])
    denied = submit(secured, audio_file("jfk.flac"), headers=bearer(reader))
    assert denied.status_code == 403 and "`submit` scope" in denied.json()["detail"]
    for path in ("/metrics", "/api/v1/asr/queue/status", "/api/v1/stats"):
        assert secured.get(path, headers=bearer(reader)).status_code == 403, path
        assert secured.get(path).status_code == 401, path
    admin = new_key(settings, "ops", list(Scope))
    for path in ("/metrics", "/api/v1/asr/queue/status", "/api/v1/stats"):
        assert secured.get(path, headers=bearer(admin)).status_code == 200, path
    assert secured.get("/health").status_code in (200, 503)  # open


def test_a_key_cannot_touch_another_keys_task(secured, settings):
    key_a = new_key(settings, "a", [Scope.SUBMIT, Scope.READ])
    key_b = new_key(settings, "b", [Scope.SUBMIT, Scope.READ])
    task_b = submit(secured, audio_file("jfk.flac"), headers=bearer(key_b)).json()["task_id"]
    attempts = {
        "read": ("GET", f"/api/v1/asr/result/{task_b}"),
        "read as srt": ("GET", f"/api/v1/asr/result/{task_b}?format=srt"),
        "export": ("GET", f"/api/v1/asr/export/{task_b}/vtt"),
        "download": ("GET", f"/api/v1/asr/audio/{task_b}"),
        "retry": ("POST", f"/api/v1/asr/retry/{task_b}"),
        "cancel": ("POST", f"/api/v1/asr/cancel/{task_b}"),
        "delete": ("DELETE", f"/api/v1/asr/task/{task_b}"),
    }
    for action, (method, path) in attempts.items():
        response = secured.request(method, path, headers=bearer(key_a))
        assert response.status_code == 404, action
        assert response.json() == {"error": "task not found",
                                   "detail": f"no task with id {task_b}"}, action  # fmt: skip
    assert secured.get("/api/v1/asr/history", headers=bearer(key_a)).json()["total"] == 0
    own = secured.get("/api/v1/asr/history", headers=bearer(key_b)).json()
    assert [r["task_id"] for r in own["records"]] == [task_b]
    assert secured.get(f"/api/v1/asr/result/{task_b}", headers=bearer(key_b)).status_code == 200
    # Its owner learns the state (not done yet); the other key learned nothing above.
    own_export = secured.get(f"/api/v1/asr/export/{task_b}/vtt", headers=bearer(key_b))
    assert own_export.status_code == 409 and own_export.json()["status"] == "queued"
    admin = new_key(settings, "ops", [Scope.ADMIN])
    assert secured.get(f"/api/v1/asr/result/{task_b}", headers=bearer(admin)).status_code == 200
    assert secured.get("/api/v1/asr/history", headers=bearer(admin)).json()["total"] == 1
    with session_scope(settings.DATABASE_URL) as session:
        assert session.scalars(select(Task)).one().status == "queued"  # untouched


def test_submit_rate_limit_answers_429_with_retry_after(secured, settings, monkeypatch):
    # The limiter's clock stands still 10 s into a minute: six uploads cannot straddle two.
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: 60 * 29_000_000 + 10.0))
    key = new_key(settings, "bursty", [Scope.SUBMIT])
    answers = [submit(secured, audio_file("hotwords.mp3"), headers=bearer(key)) for _ in range(6)]
    assert [a.status_code for a in answers] == [202] * 5 + [429]
    limited = answers[-1]
    assert limited.headers["retry-after"] == "51"  # the window ends in 50 s
    assert "SUBMIT_RATE_PER_MINUTE" in limited.json()["detail"]
    assert limited.json()["retry_after"] == int(limited.headers["retry-after"])


def test_active_task_cap_answers_429(settings):
    capped = settings.model_copy(update={"AUTH_ENABLED": True, "MAX_ACTIVE_TASKS_PER_KEY": 2})
    key = new_key(settings, "busy", [Scope.SUBMIT])
    with TestClient(create_app(capped)) as client:
        codes = [
            submit(client, audio_file("hotwords.mp3"), headers=bearer(key)).status_code
            for _ in range(3)
        ]
        third = submit(client, audio_file("hotwords.mp3"), headers=bearer(key))
    assert codes == [202, 202, 429] and third.headers["retry-after"] == "30"
    assert "MAX_ACTIVE_TASKS_PER_KEY=2" in third.json()["detail"]


def test_a_recording_over_max_audio_seconds_is_413_naming_the_limit(settings):
    short = settings.model_copy(update={"MAX_AUDIO_SECONDS": 5})
    with TestClient(create_app(short)) as client:
        response = submit(client, audio_file("jfk.flac"))
    assert response.status_code == 413
    assert "MAX_AUDIO_SECONDS" in response.json()["detail"]
    assert response.json()["max_audio_seconds"] == 5
    assert list(settings.recordings_path.glob("*")) == []


def test_a_path_traversal_name_is_stored_safely(secured, settings):
    key = new_key(settings, "bot", [Scope.SUBMIT, Scope.READ])
    with audio_file("jfk.flac").open("rb") as audio:
        response = secured.post(
            "/api/v1/asr/submit", headers=bearer(key),
            files={"audio": ("../../../../etc/cron.d/evil.flac", audio)},
        )  # fmt: skip
    assert response.status_code == 202
    with session_scope(settings.DATABASE_URL) as session:
        task = session.scalars(select(Task)).one()
        assert task.filename == "evil.flac" and task.audio_key.endswith(f"{task.id}.flac")
    assert [p.name for p in settings.recordings_path.iterdir()] == [task.audio_key]


def test_rq_dashboard_needs_an_admin_key(secured, settings):
    reader = new_key(settings, "reader", [Scope.READ])
    admin = new_key(settings, "ops", list(Scope))
    missing = secured.get("/rq/")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Basic")
    assert "admin API key" in missing.json()["detail"]
    assert secured.get("/rq/", headers=bearer("asr_not-a-real-key")).status_code == 401
    # A valid key without the scope: authenticated, but forbidden, as on every other route.
    for headers in (bearer(reader), {"X-API-Key": reader}, basic("anyone", reader)):
        denied = secured.get("/rq/", headers=headers)
        assert denied.status_code == 403, headers
        assert denied.json() == {"error": "forbidden",
                                 "detail": "this API key lacks the `admin` scope"}  # fmt: skip
    assert secured.get("/rq/", headers=bearer(admin)).status_code == 200
    assert secured.get("/rq/", headers=basic("ops", admin)).status_code == 200


def test_cors_allows_only_configured_origins(settings):
    allowed = settings.model_copy(update={"CORS_ORIGINS": ["https://app.example"]})
    with TestClient(create_app(allowed)) as client:
        ok = client.options("/api/v1/asr/history", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "GET"})  # fmt: skip
        other = client.options("/api/v1/asr/history", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})  # fmt: skip
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers
    with TestClient(create_app(settings)) as client:  # none by default
        default = client.get("/health", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in default.headers


def test_apikey_script_creates_lists_and_revokes(secured, settings):
    def script(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "scripts/apikey.py", *args]
        return subprocess.run(command, cwd=ROOT, env=os.environ.copy(), capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    created = script("create", "telegram-bot", "--scopes", "submit,read")
    assert created.returncode == 0, created.stderr
    plain = next(w for w in created.stdout.split() if w.startswith("asr_"))
    assert submit(secured, audio_file("jfk.flac"), headers=bearer(plain)).status_code == 202
    listing = script("list").stdout
    assert "telegram-bot" in listing and plain not in listing and plain[:12] in listing
    key_id = created.stdout.split()[2]
    assert script("revoke", key_id[:8]).returncode == 0
    assert submit(secured, audio_file("jfk.flac"), headers=bearer(plain)).status_code == 401
    assert script("create", "x", "--scopes", "root").returncode == 2
