"""The Telegram adapter end to end against a stand-in Bot API on loopback: updates posted to
/telegram/webhook, a real worker transcribing, a real maintenance worker sending the reply."""

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import get_settings
from app.main import create_app
from jobs.delivery.telegram_api import SECRET_HEADER
from models import Task
from models.db import session_scope
from tests.utils.audio import JFK_LINE, audio_file, make_video, normalize
from tests.utils.bot_api_standin import (
    SECRET,
    telegram_overrides,
)
from tests.utils.workers import run_maintenance_until

CHAT_ID = 4242
WEBHOOK = "/telegram/webhook"


def encode_voice_note(source: Path) -> bytes:
    """`source` as Telegram's voice notes are: Opus in Ogg, mono, 48 kHz."""
    out = io.BytesIO()
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
    with av.open(str(source)) as given, av.open(out, "w", format="ogg") as voice:
        stream = voice.add_stream("libopus", rate=48000, layout="mono")
        for frame in given.decode(audio=0):
            for resampled in resampler.resample(frame):
                voice.mux(stream.encode(resampled))
        voice.mux(stream.encode(None))
    return out.getvalue()


def message_update(update_id: int, message_id: int, chat_type: str = "private",
                   chat_id: int = CHAT_ID, **content: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "update_id": update_id,
        "message": {"message_id": message_id, "date": 1_790_000_000,
                    "chat": {"id": chat_id, "type": chat_type},
                    "from": {"id": chat_id, "is_bot": False, "first_name": "Test"}, **content},
    }  # fmt: skip


def voice_update(update_id: int, message_id: int, file_id: str, size: int) -> dict[str, Any]:
    voice = {"file_id": file_id, "file_unique_id": file_id, "duration": 11,
             "mime_type": "audio/ogg", "file_size": size}  # fmt: skip
    return message_update(update_id, message_id, voice=voice)


@pytest.fixture
def telegram(settings, bot_api) -> Iterator[TestClient]:
    """The API with the bot on (bot_api exports the same settings for worker processes)."""
    with TestClient(
        create_app(settings.model_copy(update=telegram_overrides(bot_api.url)))
    ) as client:
        yield client


def post_update(client: TestClient, update: dict[str, Any], secret: str = SECRET) -> Any:
    return client.post(WEBHOOK, json=update, headers={SECRET_HEADER: secret})


def telegram_tasks() -> list[Task]:
    with session_scope(get_settings().DATABASE_URL) as session:
        return list(session.scalars(select(Task).where(Task.idempotency_key.like("telegram:%"))))


def test_a_voice_note_is_answered_with_its_transcript(telegram, bot_api, run_worker):
    voice = encode_voice_note(audio_file("jfk.flac"))
    bot_api.files["voice-1"] = voice
    response = post_update(telegram, voice_update(1, 10, "voice-1", len(voice)))
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "outcome": "queued"}
    [reply] = bot_api.sent(CHAT_ID)
    assert (reply.text, reply.reply_to) == ("Transcribing…", 10)
    assert bot_api.methods()[:3] == ["sendMessage", "getFile", "download"]

    run_worker()
    run_maintenance_until(lambda: reply.edits > 0)
    assert JFK_LINE in normalize(reply.text)
    assert len(bot_api.sent(CHAT_ID)) == 1  # the transcript replaced "Transcribing…"
    [task] = telegram_tasks()
    assert task.status == "done" and task.content_type == "audio/ogg"
    assert task.client_metadata == {
        "telegram": {"chat_id": CHAT_ID, "message_id": 10, "reply_id": reply.message_id}
    }


def test_the_same_update_twice_makes_one_task_and_one_reply(telegram, bot_api):
    voice = encode_voice_note(audio_file("jfk.flac"))
    bot_api.files["voice-2"] = voice
    update = voice_update(2, 20, "voice-2", len(voice))
    outcomes: list[str] = []

    def deliver() -> None:
        outcomes.append(post_update(telegram, update).json()["outcome"])

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deliver()  # and once more, later
    assert sorted(outcomes) == ["duplicate", "duplicate", "duplicate", "queued"]
    assert len(telegram_tasks()) == 1
    assert [m.text for m in bot_api.sent(CHAT_ID)] == ["Transcribing…"]
    assert bot_api.methods().count("getFile") == 1


@pytest.mark.parametrize("command", ["/start", "/help", "/help@asr_bot"])
def test_start_and_help_explain_the_bot(telegram, bot_api, command):
    response = post_update(telegram, message_update(3, 30, text=command))
    assert response.json()["outcome"] == "help"
    [answer] = bot_api.sent(CHAT_ID)
    assert "voice message" in answer.text and "20 MB" in answer.text
    assert answer.reply_to == 30


def test_plain_text_gets_a_hint_in_private_and_silence_in_groups(telegram, bot_api):
    assert post_update(telegram, message_update(4, 40, text="hi")).json()["outcome"] == "hint"
    group = message_update(5, 41, chat_type="group", text="hello all")
    assert post_update(telegram, group).json()["outcome"] == "ignored"
    assert [m.text for m in bot_api.sent(CHAT_ID)] == [
        "Send me a voice message or an audio file; /help says more."
    ]


def test_a_wrong_secret_is_refused_and_nothing_happens(telegram, bot_api):
    response = post_update(telegram, message_update(6, 60, text="/start"), secret="guess")
    assert response.status_code == 403
    assert "X-Telegram-Bot-Api-Secret-Token" in response.json()["detail"]
    missing = telegram.post(WEBHOOK, json=message_update(6, 60, text="/start"))
    assert missing.status_code == 403
    assert bot_api.calls == []


def test_the_webhook_is_off_without_a_token(client):
    response = client.post(WEBHOOK, json=message_update(7, 70, text="/start"))
    assert response.status_code == 404
    assert "TELEGRAM_BOT_TOKEN" in response.json()["detail"]


def test_a_file_over_the_limit_is_refused_before_downloading(telegram, bot_api):
    update = voice_update(8, 80, "big", 25 * 1024 * 1024)
    assert post_update(telegram, update).json()["outcome"] == "too large"
    [answer] = bot_api.sent(CHAT_ID)
    assert "25.0 MB" in answer.text and "up to 20 MB" in answer.text
    assert "getFile" not in bot_api.methods()
    assert telegram_tasks() == []


def test_a_document_that_is_not_audio_is_explained(telegram, bot_api):
    pdf = {"file_id": "doc", "file_name": "invoice.pdf", "mime_type": "application/pdf",
           "file_size": 1000}  # fmt: skip
    assert post_update(telegram, message_update(9, 90, document=pdf)).json()["outcome"] == (
        "not audio"
    )
    [answer] = bot_api.sent(CHAT_ID)
    assert "invoice.pdf (application/pdf) is not audio or video" in answer.text


def test_a_file_that_does_not_decode_gets_the_reason(telegram, bot_api):
    bot_api.files["junk"] = b"this is not audio at all " * 100
    junk = {"file_id": "junk", "file_name": "note.mp3", "mime_type": "audio/mpeg",
            "file_size": 2500}  # fmt: skip
    outcome = post_update(telegram, message_update(10, 100, audio=junk)).json()["outcome"]
    assert outcome == "refused"
    [answer] = bot_api.sent(CHAT_ID)
    assert answer.text.startswith("Sorry, I can't transcribe this: note.mp3:")
    assert telegram_tasks() == []


def test_chats_outside_the_allowlist_are_told_the_bot_is_private(settings, bot_api, telegram):
    overrides = telegram_overrides(bot_api.url, TELEGRAM_ALLOWED_CHATS=[1, 2])
    with TestClient(create_app(settings.model_copy(update=overrides))) as private:
        update = voice_update(11, 110, "voice-x", 1000)
        assert post_update(private, update).json()["outcome"] == "not allowed"
    [answer] = bot_api.sent(CHAT_ID)
    assert "private" in answer.text and str(CHAT_ID) in answer.text
    assert "getFile" not in bot_api.methods()


def test_when_telegram_cannot_be_reached_the_update_is_taken_on_redelivery(telegram, bot_api):
    bot_api.failures["sendMessage"] = [(502, "Bad Gateway", None)]
    update = message_update(12, 120, text="/start")
    first = post_update(telegram, update)
    assert first.status_code == 503  # Telegram delivers it again later
    assert post_update(telegram, update).json()["outcome"] == "help"
    assert len(bot_api.sent(CHAT_ID)) == 1


def test_a_canceled_task_tells_the_chat(telegram, bot_api):
    voice = encode_voice_note(audio_file("jfk.flac"))
    bot_api.files["voice-3"] = voice
    post_update(telegram, voice_update(13, 130, "voice-3", len(voice)))
    [task] = telegram_tasks()
    assert telegram.post(f"/api/v1/asr/cancel/{task.id}").status_code == 200
    [reply] = bot_api.sent(CHAT_ID)
    run_maintenance_until(lambda: reply.edits > 0)
    assert reply.text == "Transcription canceled."


def test_updates_without_a_message_are_acknowledged(telegram, bot_api):
    edited = {"update_id": 14, "edited_message": {"message_id": 1, "chat": {"id": CHAT_ID}}}
    assert post_update(telegram, edited).json() == {"ok": True, "outcome": "ignored"}
    assert bot_api.calls == []


@pytest.mark.parametrize(
    ("kind", "mime_type", "content_type", "filename"),
    [
        ("audio", "audio/flac", "audio/flac", "audio.flac"),
        ("document", "audio/flac", "audio/flac", "talk.flac"),
        ("video", "video/mp4", "video/mp4", "video.mp4"),
        ("video_note", None, "video/mp4", "video_note.mp4"),  # round videos carry no type
    ],
)
def test_every_kind_of_recording_becomes_a_task(
    telegram, bot_api, tmp_path, kind, mime_type, content_type, filename
):
    if content_type == "video/mp4":
        data = make_video(tmp_path / "clip.mp4", "mp4", "mpeg4", "aac").read_bytes()
    else:
        data = audio_file("jfk.flac").read_bytes()
    bot_api.files[kind] = data
    item = {"file_id": kind, "file_size": len(data), "mime_type": mime_type}
    if kind == "document":
        item["file_name"] = "talk.flac"
    outcome = post_update(telegram, message_update(15, 150, **{kind: item})).json()["outcome"]
    assert outcome == "queued"
    [task] = telegram_tasks()
    assert (task.content_type, task.filename) == (content_type, filename)


def test_a_chat_with_too_many_recordings_in_progress_is_asked_to_wait(settings, bot_api,
                                                                      telegram):  # fmt: skip
    voice = encode_voice_note(audio_file("jfk.flac"))
    bot_api.files["v"] = voice
    overrides = telegram_overrides(bot_api.url, TELEGRAM_MAX_ACTIVE_PER_CHAT=2)
    with TestClient(create_app(settings.model_copy(update=overrides))) as limited:
        outcomes = [post_update(limited, voice_update(20 + n, 200 + n, "v", len(voice))).json()[
            "outcome"] for n in range(3)]  # fmt: skip
        other_chat = voice_update(30, 300, "v", len(voice))
        other_chat["message"]["chat"]["id"] = CHAT_ID + 1
        assert post_update(limited, other_chat).json()["outcome"] == "queued"
    assert outcomes == ["queued", "queued", "busy"]
    assert len(telegram_tasks()) == 3
    assert bot_api.sent(CHAT_ID)[-1].text.startswith("You have 2 recordings being transcribed")
