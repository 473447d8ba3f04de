"""Telling a task's client that the task has ended: its signed webhook (webhooks.py) and
its Telegram reply (telegram_replies.py). Each is a job of its own on the deliveries
queue, so a slow or failing client never holds up transcription or recovery; what Redis loses,
the reconciler re-creates from the row."""

from loguru import logger
from redis import Redis
from redis.exceptions import RedisError

from app.config import Settings
from jobs.delivery.telegram_replies import TelegramOrigin, enqueue_reply
from jobs.delivery.webhooks import enqueue_delivery
from jobs.queues import connect_redis
from models import Task


def announce_end(redis: Redis, task: Task) -> None:
    """Queue what `task` (just ended, committed) owes its client; best effort."""
    if task.callback_url is not None:
        enqueue_delivery(redis, task.id)
    if TelegramOrigin.of(task) is not None:
        enqueue_reply(redis, task.id)


def announce_end_from(settings: Settings, task: Task) -> None:
    """announce_end for callers holding no Redis connection (the worker's outcome code)."""
    if task.callback_url is None and TelegramOrigin.of(task) is None:
        return
    try:
        with connect_redis(settings.REDIS_URL, retries=2) as redis:
            announce_end(redis, task)
    except RedisError as exc:
        logger.error("task {}: end not announced: {}", task.id, exc)
