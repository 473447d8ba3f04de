"""Who is calling: API keys from `Authorization: Bearer <key>` or `X-API-Key`, and the
scope a route needs. With AUTH_ENABLED=false every caller is an anonymous admin."""

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request

from app.deps import SessionDep, SettingsDep
from app.errors import Forbidden, Unauthorized
from models import Scope, Task
from models.api_key import find_active_key

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
        return self.is_admin or self.key_id is None or task.api_key_id == self.key_id


ANONYMOUS = Caller(key_id=None, scopes=frozenset(Scope))


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key` (also used by /rq)."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


def authenticate(request: Request, session: SessionDep, settings: SettingsDep) -> Caller:
    if not settings.AUTH_ENABLED:
        return ANONYMOUS
    plain = presented_key(request.headers)
    if plain is None:
        raise Unauthorized("send an API key: `Authorization: Bearer <key>` or `X-API-Key`")
    key = find_active_key(session, plain)
    if key is None:
        raise Unauthorized("the API key is unknown or revoked")
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
    return Caller(key_id=key.id, scopes=frozenset(key.scopes))


def require(scope: Scope) -> Callable[[Caller], Caller]:
    """A dependency: the caller, if its key has `scope` (admin has every scope)."""

    def check(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
        if scope not in caller.scopes and not caller.is_admin:
            raise Forbidden(f"this API key lacks the `{scope}` scope")
        return caller

    check.__name__ = f"require_{scope}"
    return check


SubmitCaller = Annotated[Caller, Depends(require(Scope.SUBMIT))]
ReadCaller = Annotated[Caller, Depends(require(Scope.READ))]
AdminCaller = Annotated[Caller, Depends(require(Scope.ADMIN))]
