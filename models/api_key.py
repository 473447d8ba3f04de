"""API keys: stored as a SHA-256 hash (keys are 256-bit random tokens, so a fast hash is
enough), with a name, scopes, and created / last-used / revoked times."""

import hashlib
import secrets
import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, String, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base

KEY_PREFIX = "asr_"
# Shown by `scripts/apikey.py list` to tell keys apart; not enough to use one.
VISIBLE_CHARS = 12


class Scope(StrEnum):
    SUBMIT = "submit"  # submit, retry, cancel and delete its own tasks
    READ = "read"  # read its own tasks: results, audio, history
    ADMIN = "admin"  # every task, plus /metrics, queue status, stats, /rq


class ApiKey(Base):
    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    visible_prefix: Mapped[str] = mapped_column(String(VISIBLE_CHARS))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str, scopes: list[Scope]) -> tuple[ApiKey, str]:
    """A new key; the plain key is returned once and never stored."""
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, key_hash=hash_key(plain), visible_prefix=plain[:VISIBLE_CHARS],
                 scopes=[s.value for s in scopes])  # fmt: skip
    session.add(row)
    session.flush()
    return row, plain


def find_active_key(session: Session, plain: str) -> ApiKey | None:
    return session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(plain), ApiKey.revoked_at.is_(None))
    )
