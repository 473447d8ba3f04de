"""Run the Telegram bot without a public URL: long-poll Telegram for updates (getUpdates) and
relay each one to this service's own `POST /telegram/webhook`, the adapter Telegram's
webhook reaches, so both ways behave the same.

    uv run python scripts/telegram_polling.py [--server http://127.0.0.1:8000] [--once]

Reads TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET and TELEGRAM_API_BASE like the service.
It removes the bot's webhook first (Telegram refuses getUpdates while one is set). An update
is confirmed to Telegram only once the service has taken it, so nothing is lost while the
service is down: the relay waits and tries the same update again.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from loguru import logger

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings, configure_logging, get_settings
from jobs.delivery.telegram_api import SECRET_HEADER, BotApi, TelegramError

MAX_BACKOFF_SECONDS = 60


def main() -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=f"http://127.0.0.1:{settings.PORT}",
                        help="this service's base URL (default: %(default)s)")  # fmt: skip
    parser.add_argument("--poll-seconds", type=int, default=50,
                        help="how long one getUpdates call waits for news")  # fmt: skip
    parser.add_argument("--once", action="store_true",
                        help="relay what is waiting now, confirm it, and exit")  # fmt: skip
    args = parser.parse_args()
    if settings.TELEGRAM_BOT_TOKEN is None or settings.TELEGRAM_WEBHOOK_SECRET is None:
        print("set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET (as for the service)",
              file=sys.stderr)  # fmt: skip
        return 2
    configure_logging(settings, "telegram")
    try:
        relay_updates(settings, args.server.rstrip("/"), args.poll_seconds, args.once)
    except KeyboardInterrupt:
        logger.info("telegram polling: stopped")
    except WrongSecret as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


class WrongSecret(Exception):
    pass


def relay_updates(settings: Settings, server: str, poll_seconds: int, once: bool) -> None:
    with BotApi(settings) as bot, httpx.Client(timeout=120) as http:
        call_until_done(bot, "deleteWebhook")
        logger.info("telegram polling: relaying updates to {}", server)
        offset: int | None = None
        while True:
            updates = call_until_done(bot, "getUpdates", http_timeout=poll_seconds + 15,
                                      offset=offset, timeout=0 if once else poll_seconds,
                                      allowed_updates=["message"])  # fmt: skip
            for update in updates:
                relay(http, server, settings, update)
                offset = int(update["update_id"]) + 1
            if once:
                if offset is not None:  # confirms what was relayed, fetches nothing new
                    call_until_done(bot, "getUpdates", offset=offset, timeout=0, limit=1)
                return


def call_until_done(bot: BotApi, method: str, **params: Any) -> Any:
    """A Bot API call, retried with growing pauses while Telegram cannot be reached."""
    pause = 1
    while True:
        try:
            return bot.call(method, **params)
        except TelegramError as exc:
            if exc.permanent:
                raise
            pause = max(exc.retry_after or 0, min(pause * 2, MAX_BACKOFF_SECONDS))
            logger.warning("telegram polling: {}; again in {} s", exc, pause)
            time.sleep(pause)


def relay(http: httpx.Client, server: str, settings: Settings, update: dict[str, Any]) -> None:
    """POST the update to the webhook until the service takes it (2xx), or refuses it for
    good (a 4xx other than 429: logged and skipped, as Telegram itself would do)."""
    assert settings.TELEGRAM_WEBHOOK_SECRET is not None
    headers = {SECRET_HEADER: settings.TELEGRAM_WEBHOOK_SECRET.get_secret_value()}
    pause = 1
    while True:
        try:
            response = http.post(f"{server}/telegram/webhook", json=update, headers=headers)
        except httpx.HTTPError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        else:
            if response.is_success:
                logger.info("telegram polling: update {}: {}", update.get("update_id"),
                            response.json().get("outcome"))  # fmt: skip
                return
            if response.status_code == 403:
                raise WrongSecret(f"the service refused the webhook secret: {response.text}")
            if 400 <= response.status_code < 500 and response.status_code != 429:
                logger.error("telegram polling: update {} refused: {} {}", update.get("update_id"),
                             response.status_code, response.text)  # fmt: skip
                return
            outcome = f"HTTP {response.status_code}"
        pause = min(pause * 2, MAX_BACKOFF_SECONDS)
        logger.warning("telegram polling: update {} not taken ({}); again in {} s",
                       update.get("update_id"), outcome, pause)  # fmt: skip
        time.sleep(pause)


if __name__ == "__main__":
    sys.exit(main())
