"""A Redis db index of this test run's own on a shared server: one that was empty, claimed with
a marker key (as RQ's own tests use a dedicated index), cleared between tests and released at
the end. TEST_REDIS_URL names the server; with a db index in it, that index (it must be empty)."""

import os

import pytest
from redis import Redis

from tests.utils.databases import OWNER, left_by_a_dead_run

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
# The key that marks a Redis db index as this run's; it stays while the run lasts.
REDIS_CLAIM_KEY = "asr-test:claimed-by"
# Deletes every key of the db but the claim: a flush that keeps the db this run's.
_CLEAR_ALL_BUT_CLAIM = """
for _, key in ipairs(redis.call('KEYS', '*')) do
  if key ~= ARGV[1] then redis.call('DEL', key) end
end
"""


def claim_empty_db(url: str = TEST_REDIS_URL) -> str:
    """The URL of a Redis db index that was empty, now holding this run's claim key."""
    base, _, explicit = url.partition("://")[2].partition("/")
    scheme = url.partition("://")[0]
    if explicit:
        candidates = [int(explicit)]
    else:
        with Redis.from_url(f"{scheme}://{base}/0") as probe:
            try:
                count = int(probe.config_get("databases").get("databases", 16))
            except Exception:  # CONFIG may be disabled (managed Redis): assume the default
                count = 16
        # High indexes first, away from applications' 0; the last one (15) last of all, as
        # earlier versions of this suite flushed it whatever it held.
        candidates = [*range(count - 2, 0, -1), count - 1]
    for index in candidates:
        with Redis.from_url(f"{scheme}://{base}/{index}") as db:
            claim = db.get(REDIS_CLAIM_KEY)
            if claim is not None and left_by_a_dead_run(claim.decode()):
                # Everything in it was made by that run, which was killed before its clean-up.
                db.flushdb()
            if db.dbsize() or not db.set(REDIS_CLAIM_KEY, OWNER, nx=True):
                continue
            if db.dbsize() == 1:  # nobody else wrote between the look and the claim
                return f"{scheme}://{base}/{index}"
            db.delete(REDIS_CLAIM_KEY)
    raise pytest.UsageError(
        f"no empty Redis db index among {candidates} at {base}: the tests use one of their own"
    )


def clear_db(redis: Redis) -> None:
    """Every key of this run's db but its claim: a flush that keeps the db this run's."""
    redis.eval(_CLEAR_ALL_BUT_CLAIM, 0, REDIS_CLAIM_KEY)


def release_db(url: str) -> None:
    with Redis.from_url(url) as redis:
        clear_db(redis)
        redis.delete(REDIS_CLAIM_KEY)
