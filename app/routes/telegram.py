"""The Telegram bot's webhook: Telegram (or scripts/telegram_polling.py) posts each update
here with the secret given to setWebhook."""

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header
from loguru import logger
from pydantic import BaseModel, Field

from app.deps import QueueDep, RedisDep, ReleasingRoute, SessionDep, SettingsDep, StorageDep
from app.errors import VALIDATION_RESPONSES, Forbidden, NotEnabled, ServiceUnavailable, responses
from app.telegram import TelegramIntake
from jobs.delivery.telegram_api import SECRET_HEADER, BotApi

router = APIRouter(
    prefix="/telegram", tags=["telegram"], responses=VALIDATION_RESPONSES,
    route_class=ReleasingRoute,
)  # fmt: skip


class TelegramAck(BaseModel):
    ok: bool = Field(default=True, description="Always true: the update was taken.")
    outcome: str = Field(
        description="What was done: queued, duplicate, help, hint, too large, not audio, "
        "refused, download failed, unavailable, not allowed or ignored."
    )


@router.post("/webhook", responses=responses(Forbidden, NotEnabled, ServiceUnavailable))
def telegram_webhook(
    update: Annotated[dict[str, Any], Body(description="A Telegram Update object.")],
    session: SessionDep, queue: QueueDep, redis: RedisDep, storage: StorageDep,
    settings: SettingsDep,
    secret: Annotated[str | None, Header(alias=SECRET_HEADER, include_in_schema=False)] = None,
) -> TelegramAck:  # fmt: skip
    """Take one Telegram update: a voice message, audio, video, video note or audio document
    becomes a task and a "Transcribing…" reply that the transcript replaces when it is ready.
    A 503 asks Telegram to deliver the update again later."""
    if settings.TELEGRAM_BOT_TOKEN is None or settings.TELEGRAM_WEBHOOK_SECRET is None:
        raise NotEnabled("the Telegram bot is off: set TELEGRAM_BOT_TOKEN and "
                         "TELEGRAM_WEBHOOK_SECRET")  # fmt: skip
    expected = settings.TELEGRAM_WEBHOOK_SECRET.get_secret_value()
    if not hmac.compare_digest((secret or "").encode(), expected.encode()):
        logger.warning("telegram: update with a wrong or missing {} refused", SECRET_HEADER)
        raise Forbidden(f"wrong or missing {SECRET_HEADER}: it must be the secret_token given "
                        "to setWebhook (TELEGRAM_WEBHOOK_SECRET)")  # fmt: skip
    with BotApi(settings) as bot:
        outcome = TelegramIntake(settings, session, queue, redis, storage, bot).handle(update)
    return TelegramAck(outcome=outcome)
