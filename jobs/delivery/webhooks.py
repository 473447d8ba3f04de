"""Webhook delivery: when a task ends, a job on the `deliveries` queue POSTs its outcome,
signed, to the task's callback_url, and retries with growing delays.

Each attempt is a job with an id of its own (`webhook-<task>-<n>`): the row's
webhook_attempts says which attempt is owed, so the reconciler re-creates one that Redis lost
and no attempt runs twice. Retries are scheduled with RQ's scheduler, which the delivery
worker runs (jobs/deliveries.py).
"""

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from loguru import logger
from redis import Redis
from sqlalchemy import select

from app.config import Settings, get_settings
from jobs.delivery.webhook_guard import UnsafeCallback, checked_addresses
from jobs.queues import (
    connect_redis,
    enqueue_delivery_job,
    requeue_owed_attempts,
)
from models import Task
from models.db import session_scope
from models.task import FINAL_STATUSES

DELIVER_JOB = "jobs.delivery.webhooks.deliver_webhook"
JOB_KIND = "webhook"
ATTEMPT_TIMEOUT_SECONDS = 10
TIMESTAMP_HEADER = "X-ASR-Timestamp"
SIGNATURE_HEADER = "X-ASR-Signature"
# app.main.API_PREFIX (jobs/ cannot import app.main).
API_PREFIX = "/api/v1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the X-ASR-Signature value."""
    message = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def enqueue_delivery(redis: Redis, task_id: uuid.UUID, attempt: int = 1, delay: int = 0) -> bool:
    """Queue a delivery attempt; best effort, a failure is logged (the task has ended) and
    the reconciler tries again. False when it was not queued."""
    return enqueue_delivery_job(redis, DELIVER_JOB, JOB_KIND, task_id, attempt, delay,
                                timeout=ATTEMPT_TIMEOUT_SECONDS * 3, what="webhook")  # fmt: skip


def requeue_owed(settings: Settings, redis: Redis, ended_before: datetime) -> list[uuid.UUID]:
    """Queue again the next attempt of every webhook owed (its task ended before
    `ended_before`, not delivered, attempts left) that has no job pending; the tasks."""
    limit = len(settings.webhook_retry_delays) + 1
    with session_scope(settings.DATABASE_URL) as session:
        owed = session.execute(
            select(Task.id, Task.webhook_attempts).where(
                Task.status.in_(FINAL_STATUSES), Task.callback_url.is_not(None),
                Task.webhook_delivered_at.is_(None), Task.webhook_attempts < limit,
                Task.finished_at < ended_before,
            ).order_by(Task.finished_at)
        ).all()  # fmt: skip
    return requeue_owed_attempts(redis, JOB_KIND, owed, enqueue_delivery)


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
        if task.webhook_attempts != attempt - 1:
            return  # an attempt already made, or one of an earlier run (a retried task)
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
        addresses = checked_addresses(url, settings.WEBHOOK_ALLOW_PRIVATE)
    except UnsafeCallback as exc:
        return False, f"refused: {exc}"
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "asr-webhooks",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    outcome = ""
    for address in addresses:  # in the resolver's order, as a client resolving itself would
        try:
            response = post_to(url, str(address), body, headers)
        except httpx.HTTPError as exc:
            outcome = f"error: {type(exc).__name__}: {exc}"
            if isinstance(exc, httpx.ConnectError):
                continue
            return False, outcome
        return response.is_success, str(response.status_code)
    return False, outcome


def post_to(url: str, address: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST to `url` over a connection to `address` (a checked one), with the URL's Host
    header and TLS server name, so that nothing looks the name up a second time."""
    target = httpx.URL(url)
    # No redirects: the guard checked this URL, not wherever a redirect would lead.
    with httpx.Client(timeout=ATTEMPT_TIMEOUT_SECONDS, follow_redirects=False) as client:
        return client.post(
            target.copy_with(host=address),
            content=body,
            headers={**headers, "Host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": target.raw_host.decode("ascii")},
        )
