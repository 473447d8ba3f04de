"""The Telegram bot's intake: one update (from Telegram's webhook, or relayed by
scripts/telegram_polling.py) becomes a queued task and an immediate "Transcribing…" reply.
The transcript itself is sent by the delivery worker when the task ends
(jobs/delivery/telegram_replies.py).

Telegram delivers an update again when it is unsure we got it, so each message is claimed
in Redis first: a second delivery is acknowledged and otherwise ignored. The task's
Idempotency-Key ("telegram:<chat>:<message>") guards the same way should the claim be lost.
"""

import mimetypes
import tempfile
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from fastapi import UploadFile
from loguru import logger
from redis import Redis
from rq import Queue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth import Caller
from app.config import Settings
from app.errors import AppError, ServiceUnavailable
from app.schemas import TaskOptions
from app.submission import queue_recording
from jobs.delivery.telegram_api import BotApi, FileTooLarge, TelegramError
from jobs.delivery.telegram_replies import TelegramOrigin
from models import Scope, Task, TaskStatus
from storage import Storage

# Tasks from Telegram belong to no API key: with auth on, only admins see them in the API.
TELEGRAM_CALLER = Caller(key_id=None, scopes=frozenset({Scope.SUBMIT}))
CLAIM_SECONDS = 7 * 24 * 3600  # Telegram gives up redelivering long before this
MEDIA_KINDS = ("voice", "audio", "video_note", "video", "document")
# Documents whose type says nothing (octet-stream) are tried: the probe has the last word.
DOCUMENT_TYPES = ("audio/", "video/", "application/ogg", "application/octet-stream")
DEFAULT_EXTENSIONS = {"voice": ".ogg", "audio": ".mp3", "video_note": ".mp4", "video": ".mp4",
                      "document": ".bin"}  # fmt: skip
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
TRANSCRIBING = "Transcribing…"
HELP = (
    "Send me a voice message, an audio file, a video, a video note or an audio document, and "
    "I will reply with its transcript.\n\n"
    "Files up to {max_mb} MB. Long recordings take a while: I edit my reply when the "
    "transcript is ready."
)
BUSY = (
    "You have {count} recordings being transcribed already; send this one again when they are done."
)
NOT_ALLOWED = "Sorry, this bot is private. Ask its owner to add this chat ({chat_id})."


@dataclass(frozen=True)
class Media:
    """The file a message carries, as Telegram describes it."""

    kind: str
    file_id: str
    file_size: int | None
    file_name: str
    mime_type: str | None


def message_media(message: dict[str, Any]) -> Media | None:
    for kind in MEDIA_KINDS:
        item = message.get(kind)
        if isinstance(item, dict) and item.get("file_id"):
            mime_type = item.get("mime_type")
            # Only documents and audio carry names; the rest are named for lists and logs.
            extension = mimetypes.guess_extension(mime_type or "") or DEFAULT_EXTENSIONS[kind]
            return Media(
                kind=kind, file_id=str(item["file_id"]), file_size=item.get("file_size"),
                file_name=str(item.get("file_name") or f"{kind}{extension}"),
                mime_type=mime_type,
            )  # fmt: skip
    return None


class TelegramIntake:
    """Answers one update. Needs the request's database session, queue, Redis and storage;
    Bot API calls go through `bot`."""

    def __init__(
        self, settings: Settings, session: Session, queue: Queue, redis: Redis,
        storage: Storage, bot: BotApi,
    ) -> None:  # fmt: skip
        self.settings, self.session, self.queue = settings, session, queue
        self.redis, self.storage, self.bot = redis, storage, bot

    def handle(self, update: dict[str, Any]) -> str:
        """What was done, in a word (for the log and the webhook's answer)."""
        message = update.get("message")
        if not isinstance(message, dict):
            return "ignored"  # edits, channel posts, callbacks: nothing to transcribe
        try:
            chat_id, message_id = int(message["chat"]["id"]), int(message["message_id"])
        except (KeyError, TypeError, ValueError):
            return "ignored"
        claim = f"telegram:message:{chat_id}:{message_id}"
        if not self.redis.set(claim, 1, nx=True, ex=CLAIM_SECONDS):
            logger.info("telegram: message {} in chat {} again, ignored", message_id, chat_id)
            return "duplicate"
        try:
            return self.answer(message, chat_id, message_id)
        except BaseException:
            # Not answered: let Telegram's redelivery (or the relay's retry) try again.
            self.redis.delete(claim)
            raise

    def answer(self, message: dict[str, Any], chat_id: int, message_id: int) -> str:
        allowed = self.settings.TELEGRAM_ALLOWED_CHATS
        if allowed and chat_id not in allowed:
            self.reply(chat_id, message_id, NOT_ALLOWED.format(chat_id=chat_id))
            return "not allowed"
        media = message_media(message)
        if media is None:
            return self.answer_text(message, chat_id, message_id)
        if media.kind == "document" and not (media.mime_type or "").startswith(DOCUMENT_TYPES):
            self.reply(chat_id, message_id,
                       f"Sorry, {media.file_name} ({media.mime_type}) is not audio or video. "
                       "Send a voice message, an audio file, a video or a video note.")  # fmt: skip
            return "not audio"
        limit = self.settings.telegram_max_file_bytes
        if media.file_size is not None and media.file_size > limit:
            self.reply(chat_id, message_id, too_large(media.file_size, limit))
            return "too large"
        active = self.active_tasks(chat_id)
        if active >= self.settings.TELEGRAM_MAX_ACTIVE_PER_CHAT:
            self.reply(chat_id, message_id, BUSY.format(count=active))
            return "busy"
        reply_id = self.reply(chat_id, message_id, TRANSCRIBING)
        origin = TelegramOrigin(chat_id, message_id, reply_id)
        return self.transcribe(media, origin)

    def answer_text(self, message: dict[str, Any], chat_id: int, message_id: int) -> str:
        text = str(message.get("text") or "")
        command = text.split(maxsplit=1)[0].split("@", 1)[0] if text.strip() else ""
        if command in ("/start", "/help"):
            help_text = HELP.format(max_mb=self.settings.telegram_max_file_bytes // 2**20)
            self.reply(chat_id, message_id, help_text)
            return "help"
        if message.get("chat", {}).get("type") == "private":  # in groups, stay quiet
            self.reply(chat_id, message_id, "Send me a voice message or an audio file; /help "
                                            "says more.")  # fmt: skip
            return "hint"
        return "ignored"

    def transcribe(self, media: Media, origin: TelegramOrigin) -> str:
        """Download the file and queue it; on failure the "Transcribing…" reply says why."""
        limit = self.settings.telegram_max_file_bytes
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
            try:
                self.bot.download(media.file_id, spool, limit)
            except FileTooLarge:
                return self.fail(origin, too_large(None, limit), "too large")
            except TelegramError as exc:
                return self.fail(origin, f"Sorry, I could not fetch the file from Telegram "
                                         f"({exc.description}). Please send it again.",
                                 "download failed")  # fmt: skip
            spool.seek(0)
            upload = UploadFile(cast(BinaryIO, spool), filename=media.file_name)
            try:
                submitted = queue_recording(
                    self.session, self.queue, self.storage, self.settings, TELEGRAM_CALLER,
                    upload, TaskOptions(), self.settings.WHISPER_MODEL,
                    client_metadata=origin.as_metadata(),
                    idempotency_key=f"telegram:{origin.chat_id}:{origin.message_id}",
                )  # fmt: skip
            except ServiceUnavailable:
                return self.fail(origin, "Sorry, the transcription service is unavailable "
                                         "right now. Please send it again later.",
                                 "unavailable")  # fmt: skip
            except AppError as exc:  # the recording itself is refused: 413, 415, 400
                return self.fail(origin, f"Sorry, I can't transcribe this: {exc.detail}",
                                 "refused")  # fmt: skip
        logger.info("telegram: chat {} message {} → task {}",
                    origin.chat_id, origin.message_id, submitted.task.id)  # fmt: skip
        return "queued" if submitted.reused is None else "duplicate"

    def active_tasks(self, chat_id: int) -> int:
        """The chat's tasks still queued or processing."""
        query = select(func.count()).where(
            Task.api_key_id.is_(None), Task.idempotency_key.startswith(f"telegram:{chat_id}:"),
            Task.status.in_((TaskStatus.QUEUED, TaskStatus.PROCESSING)),
        )  # fmt: skip
        count = self.session.scalar(query) or 0
        self.session.rollback()  # no transaction stays open across the Bot API calls
        return count

    def reply(self, chat_id: int, message_id: int, text: str) -> int:
        """Send a reply; Telegram unreachable → 503, so the update is delivered again."""
        try:
            return self.bot.send_message(chat_id, text, reply_to=message_id)
        except TelegramError as exc:
            raise ServiceUnavailable(f"Telegram's Bot API refused the reply: {exc}") from None

    def fail(self, origin: TelegramOrigin, text: str, outcome: str) -> str:
        assert origin.reply_id is not None
        try:
            self.bot.edit_message(origin.chat_id, origin.reply_id, text)
        except TelegramError as exc:
            logger.warning("telegram: could not tell chat {} why: {}", origin.chat_id, exc)
        logger.info("telegram: chat {} message {}: {}", origin.chat_id, origin.message_id,
                    outcome)  # fmt: skip
        return outcome


def too_large(size: int | None, limit: int) -> str:
    what = f"This file is {size / 2**20:.1f} MB" if size else "This file is too large"
    return (f"Sorry, {what[0].lower()}{what[1:]}; I take files up to {limit // 2**20} MB. "
            "Send a shorter recording, or compress it.")  # fmt: skip
