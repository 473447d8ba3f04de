"""Per-key limits on submitting: a rate (fixed one-minute windows in Redis) and a cap on
tasks queued or processing at once."""

import time

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth import Caller
from app.config import Settings
from app.errors import TooManyRequests
from models import Task, TaskStatus

RATE_KEY = "asr:rate:{key_id}:{window}"
# When the active-task cap is hit there is no exact moment it frees up; suggest this.
ACTIVE_RETRY_AFTER_SECONDS = 30


def enforce_key_limits(session: Session, redis: Redis, caller: Caller, settings: Settings) -> None:
    """429 with Retry-After when the key is over a limit. Admin keys and auth-off are not
    limited."""
    if caller.key_id is None or caller.is_admin:
        return
    now = time.time()
    window = int(now // 60)
    key = RATE_KEY.format(key_id=caller.key_id, window=window)
    with redis.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = pipe.execute()
    if count > settings.SUBMIT_RATE_PER_MINUTE:
        raise TooManyRequests(
            f"more than {settings.SUBMIT_RATE_PER_MINUTE} submits a minute for this key "
            "(SUBMIT_RATE_PER_MINUTE)",
            retry_after=max(1, int((window + 1) * 60 - now) + 1),
        )
    active = session.scalar(
        select(func.count())
        .select_from(Task)
        .where(
            Task.api_key_id == caller.key_id,
            Task.status.in_((TaskStatus.QUEUED, TaskStatus.PROCESSING)),
        )
    )
    if (active or 0) >= settings.MAX_ACTIVE_TASKS_PER_KEY:
        raise TooManyRequests(
            f"this key already has {active} tasks queued or processing "
            f"(MAX_ACTIVE_TASKS_PER_KEY={settings.MAX_ACTIVE_TASKS_PER_KEY})",
            retry_after=ACTIVE_RETRY_AFTER_SECONDS,
        )
