"""Who is calling: API keys from `Authorization: Bearer <key>` or `X-API-Key`, and the
scope a route needs. With AUTH_ENABLED=false every caller is an anonymous admin."""

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from app.async_db import AsyncDatabase
from app.config import Settings
from app.errors import Forbidden, Unauthorized
from models import ApiKey, Scope, Task
from models.api_key import hash_key

API_KEY_QUERY_DOC = (
    "The API key, for browsers that cannot send headers here (EventSource, <audio>); a "
    "header is preferred: URLs end up in logs and histories."
)
# The OpenAPI security schemes of every keyed route (app/openapi.py adds them), so /docs has
# an Authorize button and generated clients know where keys go. Not FastAPI `Security`
# dependencies: solving those took two more dependencies per request on every route.
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "`Authorization: Bearer <key>`"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "`X-API-Key: <key>`"},
}  # fmt: skip
_QUERY_KEY = re.compile(r"(?<=[?&]api_key=)[^&\s]+")
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    key_id: uuid.UUID | None  # None: auth is off
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes

    def owns(self, task: Task) -> bool:
        return self.may_see(task.api_key_id)

    def may_see(self, owner: uuid.UUID | None) -> bool:
        """Whether a task submitted by the key `owner` is visible to this caller."""
        return self.is_admin or self.key_id is None or owner == self.key_id


ANONYMOUS = Caller(key_id=None, scopes=frozenset(Scope))


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key` (also used by /rq)."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


# The key lookup runs on the event loop (app/async_db.py): no thread-pool hop and no ORM
# session per request, which polling clients pay on every poll.
KEY_BY_HASH = select(ApiKey.id, ApiKey.scopes, ApiKey.last_used_at).where(
    ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None)
)
TOUCH_KEY = (
    update(ApiKey).where(ApiKey.id == bindparam("key_id")).values(last_used_at=bindparam("now"))
)
# Where the upload middleware (app/upload_auth.py) leaves the caller it identified before
# the body was read, so the route does not look the key up a second time.
CALLER_STATE = "caller"
# The dependencies that identify a caller: a route depending on one is keyed, and its
# OpenAPI operation names the security schemes (app/openapi.py).
KEYED: set[Callable[..., Any]] = set()


def _keyed(dependency: Callable[..., Awaitable[Caller]]) -> Callable[..., Awaitable[Caller]]:
    KEYED.add(dependency)
    return dependency


@_keyed
async def authenticate(request: Request) -> Caller:
    """The caller that the request's key (`Authorization: Bearer` or `X-API-Key`) stands for.
    One plain dependency: this runs on every request of every keyed route."""
    return await _caller(request, presented_key(request.headers))


@_keyed
async def authenticate_browser(
    request: Request, api_key: Annotated[str | None, Query(description=API_KEY_QUERY_DOC)] = None
) -> Caller:
    """For the few GET routes a browser loads by URL alone (EventSource, `<audio src>`),
    which cannot send headers: the key may also come as `?api_key=`."""
    return await _caller(request, presented_key(request.headers) or api_key or None)


async def _caller(request: Request, plain: str | None) -> Caller:
    settings: Settings = request.app.state.settings
    if not settings.AUTH_ENABLED:
        return ANONYMOUS
    known: Caller | None = request.scope.get("state", {}).get(CALLER_STATE)
    return known or await identify(request.app.state.db, plain, settings)


async def identify(db: AsyncDatabase, plain: str | None, settings: Settings) -> Caller:
    """The caller a plain key (or its absence) stands for."""
    if not settings.AUTH_ENABLED:
        return ANONYMOUS
    if plain is None:
        raise Unauthorized("send an API key: `Authorization: Bearer <key>` or `X-API-Key`")
    key = await db.fetch_one(KEY_BY_HASH, key_hash=hash_key(plain))
    if key is None:
        raise Unauthorized("the API key is unknown or revoked")
    now = datetime.now(UTC)
    if key["last_used_at"] is None or now - key["last_used_at"] > LAST_USED_RESOLUTION:
        await db.execute(TOUCH_KEY, key_id=key["id"], now=now)
    return Caller(key_id=key["id"], scopes=frozenset(key["scopes"]))


def require(scope: Scope) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency: the caller, if its key has `scope` (admin has every scope)."""

    async def check(request: Request) -> Caller:
        return ensure_scope(await authenticate(request), scope)

    check.__name__ = f"require_{scope}"
    return _keyed(check)


def require_from_browser(scope: Scope) -> Callable[..., Awaitable[Caller]]:
    """`require`, for the routes whose key may also come as `?api_key=`."""

    async def check(
        request: Request,
        api_key: Annotated[str | None, Query(description=API_KEY_QUERY_DOC)] = None,
    ) -> Caller:
        return ensure_scope(await authenticate_browser(request, api_key), scope)

    check.__name__ = f"require_{scope}_from_browser"
    return _keyed(check)


def ensure_scope(caller: Caller, scope: Scope) -> Caller:
    """`caller`, if its key has `scope` (admin has every scope); else Forbidden."""
    if scope not in caller.scopes and not caller.is_admin:
        raise Forbidden(f"this API key lacks the `{scope}` scope")
    return caller


def active_key_ids(session: Session, key_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Those of `key_ids` that are neither revoked nor deleted."""
    query = select(ApiKey.id).where(ApiKey.id.in_(key_ids), ApiKey.revoked_at.is_(None))
    return set(session.scalars(query))


SubmitCaller = Annotated[Caller, Depends(require(Scope.SUBMIT))]
ReadCaller = Annotated[Caller, Depends(require(Scope.READ))]
AdminCaller = Annotated[Caller, Depends(require(Scope.ADMIN))]
# A reader whose key may also be in the query string (EventSource, <audio src>).
BrowserReadCaller = Annotated[Caller, Depends(require_from_browser(Scope.READ))]


class HideQueryKeys(logging.Filter):
    """Masks `?api_key=` in uvicorn's access lines (they include the query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY_KEY.sub("***", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def hide_query_keys_in_access_log() -> None:
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, HideQueryKeys) for f in access_log.filters):
        access_log.addFilter(HideQueryKeys())
