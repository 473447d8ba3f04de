"""The submit form's `callback_url` and `callback_secret`: where to POST the signed webhook
when the task ends (delivery: jobs/delivery/webhooks.py)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Form
from fastapi.exceptions import RequestValidationError

from app.deps import SettingsDep
from app.schemas import NullAsNone
from jobs.delivery.webhook_guard import MAX_CALLBACK_URL_LENGTH, UnsafeCallback, check_callback_url

CALLBACK_URL_DOC = (
    "An http(s) URL that gets a signed POST (JSON) when the task is done, failed or canceled; "
    "see the README's Webhooks section. Must resolve to a public address."
)
CALLBACK_SECRET_DOC = (
    "The HMAC secret for this task's webhook signature; default: the server's WEBHOOK_SECRET. "
    "Never shown again."
)


@dataclass(frozen=True)
class CallbackRequest:
    url: str
    # None: sign with WEBHOOK_SECRET, read at delivery time.
    secret: str | None


def _refuse(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field), "msg": message}])


def callback_form(
    settings: SettingsDep,
    callback_url: Annotated[
        str | None,
        Form(max_length=MAX_CALLBACK_URL_LENGTH, description=CALLBACK_URL_DOC),
        NullAsNone,
    ] = None,
    callback_secret: Annotated[
        str | None, Form(min_length=1, max_length=255, description=CALLBACK_SECRET_DOC), NullAsNone
    ] = None,
) -> CallbackRequest | None:
    """A refused callback is a 422 like any other bad form field."""
    if callback_url is None or not callback_url.strip():
        return None
    if callback_secret is None and settings.WEBHOOK_SECRET is None:
        raise _refuse(
            "callback_url",
            "callback_url needs a secret to sign the webhook: send callback_secret "
            "(or the server must set WEBHOOK_SECRET)",
        )
    try:
        check_callback_url(callback_url, settings.WEBHOOK_ALLOW_PRIVATE)
    except UnsafeCallback as exc:
        raise _refuse("callback_url", str(exc)) from None
    return CallbackRequest(url=callback_url, secret=callback_secret)
