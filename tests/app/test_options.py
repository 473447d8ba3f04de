"""Transcription options reach faster-whisper, and what a model cannot do is refused with a
reason; video containers with an audio track transcribe like audio."""

import pytest

from tests.utils.api import result, submit
from tests.utils.audio import JFK_LINE, audio_file, make_video, normalize


def test_hotwords_make_the_product_name_appear(client, run_worker):
    plain = submit(client, audio_file("hotwords.mp3")).json()["task_id"]
    hinted = submit(client, audio_file("hotwords.mp3"), hotwords="ComfyUI").json()["task_id"]
    run_worker()
    assert "ComfyUI" not in result(client, plain)["text"]
    body = result(client, hinted)
    assert "ComfyUI" in body["text"], body["text"]
    assert body["options"]["hotwords"] == "ComfyUI"


def test_vad_parameters_reach_faster_whisper(client, run_worker):
    default = submit(client, audio_file("jfk.flac"), vad_filter="true").json()["task_id"]
    # A threshold no frame of speech reaches: Silero keeps nothing, so nothing is heard.
    deaf = submit(
        client, audio_file("jfk.flac"), vad_filter="true", vad_threshold="0.999",
        vad_min_speech_ms="250", vad_min_silence_ms="500", vad_speech_pad_ms="100",
    ).json()["task_id"]  # fmt: skip
    run_worker()
    assert JFK_LINE in normalize(result(client, default)["text"])
    body = result(client, deaf)
    assert body["status"] == "done" and JFK_LINE not in normalize(body["text"])
    expected = {"vad_threshold": 0.999, "vad_min_speech_ms": 250, "vad_min_silence_ms": 500,
                "vad_speech_pad_ms": 100}  # fmt: skip
    assert {name: body["options"][name] for name in expected} == expected


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"vad_threshold": "0.3"}, "vad_threshold", "only apply with vad_filter=true"),
        ({"vad_filter": "true", "vad_threshold": "1.5"}, "vad_threshold", "less than 1"),
        ({"vad_filter": "true", "vad_speech_pad_ms": "-1"}, "vad_speech_pad_ms", "greater"),
        ({"vad_filter": "true", "vad_min_silence_ms": "99999"}, "vad_min_silence_ms", "less"),
    ],
)
def test_invalid_vad_settings_are_422_naming_the_rule(client, fields, field, words):
    response = submit(client, audio_file("jfk.flac"), **fields)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid request"
    assert any(words in e["msg"] for e in body["detail"]), body
    assert field in response.text


def test_an_english_only_model_refuses_other_languages_and_translation(client):
    response = submit(client, audio_file("jfk.flac"), language="de", task="translate")
    assert response.status_code == 422, response.text
    detail = {e["loc"][-1]: e["msg"] for e in response.json()["detail"]}
    assert "tiny.en is an English-only model" in detail["language"]
    assert "cannot translate" in detail["task"]
    assert submit(client, audio_file("jfk.flac"), language="en").status_code == 202


@pytest.mark.parametrize(
    ("name", "container", "video_codec", "audio_codec"),
    [
        ("jfk.mp4", "mp4", "mpeg4", "aac"),
        ("jfk.mkv", "matroska", "mpeg4", "libopus"),
        ("jfk.webm", "webm", "libvpx", "libopus"),
        ("jfk.mov", "mov", "mpeg4", "aac"),
    ],
)
def test_video_with_an_audio_track_transcribes(
    client, run_worker, tmp_path, name, container, video_codec, audio_codec
):
    video = make_video(tmp_path / name, container, video_codec, audio_codec)
    answer = submit(client, video)
    assert answer.status_code == 202, answer.text
    run_worker()
    body = result(client, answer.json()["task_id"])
    assert body["status"] == "done", body
    assert JFK_LINE in normalize(body["text"])
    assert body["duration"] == pytest.approx(11.0, abs=0.2)
