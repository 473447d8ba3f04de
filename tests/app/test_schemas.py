"""The API's copy of Whisper's language list matches faster-whisper's."""

from faster_whisper.tokenizer import _LANGUAGE_CODES

from app.schemas import LANGUAGE_CODES, TaskOptions


def test_language_codes_match_faster_whisper():
    assert set(_LANGUAGE_CODES) == LANGUAGE_CODES


def test_auto_and_blank_language_mean_detection():
    assert TaskOptions(language="auto").language is None
    assert TaskOptions(language="").language is None
    assert TaskOptions(language=" DE ").language == "de"
