"""The Telegram bot's answer when a task from a chat ends: the "Transcribing…" message is
edited into the transcript (continued in further messages past Telegram's 4,096-character
limit), or into the reason it failed. A job on the `deliveries` queue, retried with the
webhook delays when Telegram cannot be reached or asks to slow down.

Where a task came from lives in its client metadata under "telegram" (written by the API's
adapter, app/telegram.py), so a retried task answers in the same chat. How far the reply got
lives on the row (telegram_reply_*): each attempt is a job with an id of its own
(`telegram-reply-<task>-<n>`), so the reconciler re-creates one that Redis lost, and a
re-created reply continues after the messages already sent.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from redis import Redis
from sqlalchemy import select

from app.config import Settings, get_settings
from jobs.delivery.telegram_api import BotApi, TelegramError, split_message
from jobs.queues import (
    connect_redis,
    enqueue_delivery_job,
    requeue_owed_attempts,
)
from models import Task, TaskStatus
from models.db import session_scope
from models.task import FINAL_STATUSES

REPLY_JOB = "jobs.delivery.telegram_replies.send_outcome"
JOB_KIND = "telegram-reply"
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


def enqueue_reply(redis: Redis, task_id: uuid.UUID, attempt: int = 1, delay: int = 0) -> bool:
    """Queue the reply (or its next attempt); best effort, a failure is logged and the
    reconciler tries again. False when it was not queued."""
    return enqueue_delivery_job(redis, REPLY_JOB, JOB_KIND, task_id, attempt, delay,
                                timeout=300, what="telegram reply")  # fmt: skip


def requeue_owed(settings: Settings, redis: Redis, ended_before: datetime) -> list[uuid.UUID]:
    """Queue again the next attempt of every reply owed (its task ended before
    `ended_before`, the reply neither sent nor given up) that has no job pending; the tasks."""
    if settings.TELEGRAM_BOT_TOKEN is None:
        return []  # nothing could send them; they stay owed until a token is set
    with session_scope(settings.DATABASE_URL) as session:
        owed = session.execute(
            select(Task.id, Task.telegram_reply_attempts).where(
                Task.status.in_(FINAL_STATUSES), Task.client_metadata.has_key(METADATA_KEY),
                Task.telegram_reply_ended_at.is_(None), Task.finished_at < ended_before,
            ).order_by(Task.finished_at)
        ).all()  # fmt: skip
    return requeue_owed_attempts(redis, JOB_KIND, owed, enqueue_reply)


def send_outcome(task_id: str, attempt: int = 1) -> None:
    """Send the messages not yet in the chat; on a Telegram error, schedule the rest."""
    settings = get_settings()
    if settings.TELEGRAM_BOT_TOKEN is None:
        logger.error("task {}: telegram reply dropped: TELEGRAM_BOT_TOKEN is not set", task_id)
        return
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, uuid.UUID(task_id), with_for_update=True)
        if task is None or task.telegram_reply_attempts != attempt - 1:
            return  # gone, or an attempt already made (or an earlier run's)
        origin = TelegramOrigin.of(task)
        if origin is None:  # a client's own "telegram" metadata: no chat to answer
            task.telegram_reply_ended_at = datetime.now(UTC)
            return
        messages, sent = outcome_messages(task), task.telegram_reply_sent
    with BotApi(settings) as bot:
        for index in range(sent, len(messages)):
            try:
                deliver_one(bot, origin, index, messages[index])
            except TelegramError as exc:
                retry_later(task_id, attempt, exc)
                return
            record_reply(settings, task_id, sent=index + 1)
    record_reply(settings, task_id, attempts=attempt, ended=True)
    logger.info("task {}: telegram reply sent ({} message(s))", task_id, len(messages))


def record_reply(settings: Settings, task_id: str, sent: int | None = None,
                 attempts: int | None = None, ended: bool = False) -> None:  # fmt: skip
    """Write how far the reply got on the row."""
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, uuid.UUID(task_id), with_for_update=True)
        if task is None:
            return
        if sent is not None:
            task.telegram_reply_sent = sent
        if attempts is not None:
            task.telegram_reply_attempts = attempts
        if ended:
            task.telegram_reply_ended_at = datetime.now(UTC)


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


def retry_later(task_id: str, attempt: int, exc: TelegramError) -> None:
    settings = get_settings()
    delays = settings.webhook_retry_delays
    give_up = exc.permanent or attempt > len(delays)
    record_reply(settings, task_id, attempts=attempt, ended=give_up)
    if give_up:
        why = "asking again cannot help" if exc.permanent else f"{attempt} attempts"
        logger.error("task {}: telegram reply given up ({}): {}", task_id, why, exc)
        return
    delay = max(exc.retry_after or 0, delays[attempt - 1])
    logger.warning("task {}: telegram reply attempt {}: {}; retry in {} s",
                   task_id, attempt, exc, delay)  # fmt: skip
    with connect_redis(settings.REDIS_URL, retries=2) as redis:
        enqueue_reply(redis, uuid.UUID(task_id), attempt + 1, delay)
