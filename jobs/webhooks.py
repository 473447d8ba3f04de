"""Webhook delivery: when a task ends, a job on the model-free `maintenance` queue POSTs its
outcome, signed, to the task's callback_url, and retries with growing delays.

The retries are scheduled with `enqueue_in`, which needs RQ's scheduler: the maintenance
worker runs with one (jobs/maintenance.py).
"""

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from loguru import logger
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from app.config import Settings, get_settings
from jobs.queues import MAINTENANCE_QUEUE, connect_redis
from jobs.webhook_guard import UnsafeCallback, check_callback_url
from models import Task
from models.db import session_scope

DELIVER_JOB = "jobs.webhooks.deliver_webhook"
ATTEMPT_TIMEOUT_SECONDS = 10
TIMESTAMP_HEADER = "X-ASR-Timestamp"
SIGNATURE_HEADER = "X-ASR-Signature"
# app.main.API_PREFIX (jobs/ cannot import app.main).
API_PREFIX = "/api/v1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the X-ASR-Signature value."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def enqueue_delivery(redis: Redis, task_id: uuid.UUID, attempt: int = 1, delay: int = 0) -> None:
    """Queue a delivery attempt; best effort, a failure is logged (the task has ended)."""
    queue = Queue(MAINTENANCE_QUEUE, connection=redis)
    options: dict[str, Any] = {
        "job_timeout": ATTEMPT_TIMEOUT_SECONDS * 3, "result_ttl": 600,
        "failure_ttl": 7 * 24 * 3600, "description": f"webhook for task {task_id} #{attempt}",
    }  # fmt: skip
    try:
        if delay > 0:
            queue.enqueue_in(timedelta(seconds=delay), DELIVER_JOB, str(task_id), attempt,
                             **options)  # fmt: skip
        else:
            queue.enqueue(DELIVER_JOB, str(task_id), attempt, **options)
    except RedisError as exc:
        logger.error("task {}: webhook attempt {} not queued: {}", task_id, attempt, exc)


def webhook_body(task: Task, settings: Settings) -> dict[str, Any]:
    base = (settings.PUBLIC_BASE_URL or "").rstrip("/") + API_PREFIX
    return {
        "task_id": str(task.id),
        "status": task.status,
        "text": task.text,
        "language": task.detected_language or task.language,
        "duration": task.duration_seconds,
        "error": task.error,
        "metadata": task.client_metadata,
        "links": {
            "result": f"{base}/asr/result/{task.id}",
            "audio": f"{base}/asr/audio/{task.id}" if task.audio_key else None,
        },
    }


def deliver_webhook(task_id: str, attempt: int = 1) -> None:
    """POST one attempt; on anything but a 2xx, schedule the next while attempts remain."""
    settings = get_settings()
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, uuid.UUID(task_id))
        if task is None or task.callback_url is None or task.webhook_delivered_at is not None:
            return
        url = task.callback_url
        secret = task.callback_secret or (
            settings.WEBHOOK_SECRET.get_secret_value() if settings.WEBHOOK_SECRET else ""
        )
        body = json.dumps(webhook_body(task, settings), ensure_ascii=False).encode()
    delivered, outcome = post_signed(url, secret, body, settings)
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, uuid.UUID(task_id), with_for_update=True)
        if task is None:
            return
        task.webhook_attempts += 1
        task.webhook_last_status = outcome[:255]
        if delivered:
            task.webhook_delivered_at = datetime.now(UTC)
    delays = settings.webhook_retry_delays
    if delivered:
        logger.info("task {}: webhook delivered on attempt {}", task_id, attempt)
    elif attempt <= len(delays):
        logger.warning("task {}: webhook attempt {}: {}; retry in {} s",
                       task_id, attempt, outcome, delays[attempt - 1])  # fmt: skip
        with connect_redis(settings.REDIS_URL, retries=2) as redis:
            enqueue_delivery(redis, uuid.UUID(task_id), attempt + 1, delays[attempt - 1])
    else:
        logger.error("task {}: webhook given up after {} attempts: {}", task_id, attempt, outcome)


def post_signed(url: str, secret: str, body: bytes, settings: Settings) -> tuple[bool, str]:
    """(delivered, HTTP status or error text). The guard runs again: DNS may have changed."""
    if not secret:
        return False, "error: no secret (the task has none and WEBHOOK_SECRET is unset)"
    try:
        check_callback_url(url, settings.WEBHOOK_ALLOW_PRIVATE)
    except UnsafeCallback as exc:
        return False, f"refused: {exc}"
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "asr-webhooks",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    try:
        # No redirects: the guard checked this URL, not wherever a redirect would lead.
        response = httpx.post(url, content=body, headers=headers,
                              timeout=ATTEMPT_TIMEOUT_SECONDS, follow_redirects=False)  # fmt: skip
    except httpx.HTTPError as exc:
        return False, f"error: {type(exc).__name__}: {exc}"
    return response.is_success, str(response.status_code)
