"""`.env.example` mirrors the Settings class line by line, and bad values fail at startup."""

import re

import pytest
from pydantic import ValidationError

from app.config import Settings
from tests.utils.paths import ROOT


def test_env_example_lists_every_setting_in_order():
    text = (ROOT / ".env.example").read_text()
    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)
    assert names == list(Settings.model_fields)


def test_env_example_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch, tmp_path):
    text = (ROOT / ".env.example").read_text()
    env_file = tmp_path / ".env"
    env_file.write_text(text)
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings == Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WHISPER_DEVICE", "gpu"),
        ("WHISPER_COMPUTE_TYPE", "int4"),
        ("MAX_UPLOAD_MB", "0"),
        ("TELEGRAM_WEBHOOK_SECRET", "not allowed: spaces"),
        ("TELEGRAM_ALLOWED_CHATS", "12,abc"),
    ],
)
def test_invalid_values_fail_fast_naming_the_setting(name: str, value: str, monkeypatch):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_telegram_token_without_a_webhook_secret_fails_fast(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    with pytest.raises(ValidationError, match="TELEGRAM_WEBHOOK_SECRET is not"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "a-good_secret")
    assert Settings(_env_file=None).TELEGRAM_BOT_TOKEN is not None  # type: ignore[call-arg]
