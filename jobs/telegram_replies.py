"""The Telegram bot's answer when a task from a chat ends: the "Transcribing…" message is
edited into the transcript (continued in further messages past Telegram's 4,096-character
limit), or into the reason it failed. A job on the model-free `maintenance` queue, retried
with the webhook delays when Telegram cannot be reached or asks to slow down.

Where a task came from lives in its client metadata under "telegram" (written by the API's
adapter, app/telegram.py), so a retried task answers in the same chat.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from loguru import logger
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from app.config import get_settings
from jobs.queues import MAINTENANCE_QUEUE, connect_redis
from jobs.telegram_api import BotApi, TelegramError, split_message
from models import Task, TaskStatus
from models.db import session_scope

REPLY_JOB = "jobs.telegram_replies.send_outcome"
METADATA_KEY = "telegram"
NO_SPEECH = "No speech was heard in this recording."
CANCELED = "Transcription canceled."


@dataclass(frozen=True)
class TelegramOrigin:
    """The message a task transcribes, and the bot's "Transcribing…" reply to it."""

    chat_id: int
    message_id: int
    reply_id: int | None

    def as_metadata(self) -> dict[str, Any]:
        return {METADATA_KEY: {"chat_id": self.chat_id, "message_id": self.message_id,
                               "reply_id": self.reply_id}}  # fmt: skip

    @classmethod
    def of(cls, task: Task) -> "TelegramOrigin | None":
        entry = (task.client_metadata or {}).get(METADATA_KEY)
        if not isinstance(entry, dict):
            return None
        try:
            reply_id = entry.get("reply_id")
            return cls(int(entry["chat_id"]), int(entry["message_id"]),
                       None if reply_id is None else int(reply_id))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None  # a client's own "telegram" metadata, not ours


def outcome_messages(task: Task) -> list[str]:
    """What the chat is told, in messages Telegram accepts."""
    if task.status == TaskStatus.DONE:
        return split_message(task.text or "") or [NO_SPEECH]
    if task.status == TaskStatus.FAILED:
        return split_message(f"Sorry, this recording could not be transcribed: {task.error}")
    return [CANCELED]


def enqueue_reply(redis: Redis, task_id: uuid.UUID, attempt: int = 1, sent: int = 0,
                  delay: int = 0) -> None:  # fmt: skip
    """Queue the reply (or its next attempt); best effort, a failure is logged."""
    queue = Queue(MAINTENANCE_QUEUE, connection=redis)
    options: dict[str, Any] = {
        "job_timeout": 300, "result_ttl": 600, "failure_ttl": 7 * 24 * 3600,
        "description": f"telegram reply for task {task_id} #{attempt}",
    }  # fmt: skip
    try:
        if delay > 0:
            queue.enqueue_in(timedelta(seconds=delay), REPLY_JOB, str(task_id), attempt, sent,
                             **options)  # fmt: skip
        else:
            queue.enqueue(REPLY_JOB, str(task_id), attempt, sent, **options)
    except RedisError as exc:
        logger.error("task {}: telegram reply {} not queued: {}", task_id, attempt, exc)


def send_outcome(task_id: str, attempt: int = 1, sent: int = 0) -> None:
    """Send the messages from number `sent` on; on a Telegram error, schedule the rest."""
    settings = get_settings()
    if settings.TELEGRAM_BOT_TOKEN is None:
        logger.error("task {}: telegram reply dropped: TELEGRAM_BOT_TOKEN is not set", task_id)
        return
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, uuid.UUID(task_id))
        origin = TelegramOrigin.of(task) if task is not None else None
        if task is None or origin is None:
            return
        messages = outcome_messages(task)
    with BotApi(settings) as bot:
        for index in range(sent, len(messages)):
            try:
                deliver_one(bot, origin, index, messages[index])
            except TelegramError as exc:
                retry_later(task_id, attempt, index, exc)
                return
    logger.info("task {}: telegram reply sent ({} message(s))", task_id, len(messages))


def deliver_one(bot: BotApi, origin: TelegramOrigin, index: int, text: str) -> None:
    """The first message replaces "Transcribing…"; the rest follow as replies."""
    if index == 0 and origin.reply_id is not None:
        try:
            bot.edit_message(origin.chat_id, origin.reply_id, text)
            return
        except TelegramError as exc:
            if "message to edit not found" not in exc.description:  # deleted by the user
                raise
    bot.send_message(origin.chat_id, text, reply_to=origin.message_id)


def retry_later(task_id: str, attempt: int, sent: int, exc: TelegramError) -> None:
    settings = get_settings()
    delays = settings.webhook_retry_delays
    if exc.permanent or attempt > len(delays):
        why = "asking again cannot help" if exc.permanent else f"{attempt} attempts"
        logger.error("task {}: telegram reply given up ({}): {}", task_id, why, exc)
        return
    delay = max(exc.retry_after or 0, delays[attempt - 1])
    logger.warning("task {}: telegram reply attempt {}: {}; retry in {} s",
                   task_id, attempt, exc, delay)  # fmt: skip
    with connect_redis(settings.REDIS_URL, retries=2) as redis:
        enqueue_reply(redis, uuid.UUID(task_id), attempt + 1, sent, delay)
