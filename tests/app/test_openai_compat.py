"""app/openai_compat.py and app/openai_errors.py: OpenAI's shapes from our own data."""

from app.openai_compat import (
    LANGUAGE_NAMES,
    language_name,
    model_list,
    resolve_model,
    verbose_json,
)
from app.openai_errors import error_body
from app.schemas import LANGUAGE_CODES

SEGMENTS = [
    {"start": 0.0, "end": 1.0, "text": "Ask not",
     "words": [{"start": 0.0, "end": 0.4, "word": " Ask", "probability": 0.9},
               {"start": 0.5, "end": 1.0, "word": " not", "probability": 0.8}]},
    {"start": 1.0, "end": 2.5, "text": "what", "avg_logprob": -0.3, "no_speech_prob": 0.01,
     "words": [{"start": 1.2, "end": 2.5, "word": " what", "probability": 0.7}]},
]  # fmt: skip


def test_every_whisper_language_has_its_openai_name():
    assert LANGUAGE_NAMES.keys() == LANGUAGE_CODES
    assert language_name("en") == "english" and language_name("de") == "german"
    assert language_name("yue") == "cantonese" and language_name(None) == ""


def test_errors_have_openais_shape_and_types():
    assert error_body(400, "bad", param="model", code="model_not_found") == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "model",
                  "code": "model_not_found"}
    }  # fmt: skip
    assert error_body(401, "no key")["error"]["code"] == "invalid_api_key"
    assert error_body(429, "slow down")["error"]["type"] == "rate_limit_error"
    assert error_body(503, "down")["error"]["type"] == "server_error"


def test_whisper_1_means_the_default_model():
    offered = ["tiny.en", "base"]
    assert resolve_model("whisper-1", "tiny.en", offered) == "tiny.en"
    assert resolve_model("base", "tiny.en", offered) == "base"
    assert resolve_model("gpt-4o-transcribe", "tiny.en", offered) is None
    listed = model_list(offered, "us").model_dump()
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["whisper-1", "tiny.en", "base"]
    assert listed["data"][0] == {"id": "whisper-1", "object": "model", "created": 0,
                                 "owned_by": "us"}  # fmt: skip


def test_verbose_json_has_segments_by_default_and_words_when_asked():
    plain = verbose_json("transcribe", "en", 2.5, "Ask not what", SEGMENTS, [], None)
    body = plain.model_dump(exclude_none=True)
    assert body.keys() == {"task", "language", "duration", "text", "segments"}
    assert body["language"] == "english" and body["duration"] == 2.5
    first, second = body["segments"]
    assert first["id"] == 0 and first["seek"] == 0 and first["tokens"] == []
    assert first["avg_logprob"] == 0.0 and first["temperature"] == 0.0
    assert first["compression_ratio"] > 0
    assert (second["seek"], second["avg_logprob"], second["no_speech_prob"]) == (100, -0.3, 0.01)

    words_only = verbose_json("translate", "de", 2.5, "x", SEGMENTS, ["word"], 0.4)
    body = words_only.model_dump(exclude_none=True)
    assert "segments" not in body and body["task"] == "translate"
    assert body["words"] == [
        {"word": "Ask", "start": 0.0, "end": 0.4},
        {"word": "not", "start": 0.5, "end": 1.0},
        {"word": "what", "start": 1.2, "end": 2.5},
    ]
    both = verbose_json("transcribe", "en", 2.5, "x", SEGMENTS, ["word", "segment"], 0.4)
    assert both.segments and both.words and both.segments[0].temperature == 0.4
