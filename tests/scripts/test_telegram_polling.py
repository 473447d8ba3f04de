"""scripts/telegram_polling.py relays Telegram's updates to the service's webhook route: the
stand-in Bot API holds the updates, the service runs under uvicorn."""

import os
import subprocess
import sys
from pathlib import Path

from tests.utils.bot_api_standin import (
    bot_api_standin,
    telegram_env,
)
from tests.utils.paths import ROOT
from tests.utils.processes import uvicorn_server

SCRIPT = ROOT / "scripts" / "telegram_polling.py"


def run_polling(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def command_update(update_id: int, text: str) -> dict[str, object]:
    return {"update_id": update_id, "message": {
        "message_id": update_id * 10, "date": 1_790_000_000, "text": text,
        "chat": {"id": 55, "type": "private"}}}  # fmt: skip


def test_updates_are_relayed_to_the_webhook_and_confirmed(settings, tmp_path: Path):
    with bot_api_standin() as bot_api:
        env = telegram_env(bot_api.url)
        bot_api.updates = [command_update(31, "/start"), command_update(32, "hello")]
        with uvicorn_server(tmp_path / "web.log", **env) as url:
            done = run_polling(env, "--server", url, "--once")
        assert done.returncode == 0, done.stderr[-3000:]
        assert [m.text.split()[0] for m in bot_api.sent(55)] == ["Send", "Send"]
        assert [m.reply_to for m in bot_api.sent(55)] == [310, 320]  # help, then the hint
        methods = bot_api.methods()
        assert methods[0] == "deleteWebhook"  # getUpdates is refused while a webhook is set
        polls = [params for method, params in bot_api.calls if method == "getUpdates"]
        assert polls[-1]["offset"] == 33  # both confirmed to Telegram


def test_a_wrong_secret_stops_the_relay_with_the_reason(settings, tmp_path: Path):
    with bot_api_standin() as bot_api:
        env = telegram_env(bot_api.url)
        bot_api.updates = [command_update(41, "/start")]
        with uvicorn_server(tmp_path / "web.log", **env) as url:
            done = run_polling({**env, "TELEGRAM_WEBHOOK_SECRET": "other"}, "--server", url,
                               "--once")  # fmt: skip
        assert done.returncode == 1
        assert "refused the webhook secret" in done.stderr
        polls = [params for method, params in bot_api.calls if method == "getUpdates"]
        assert all(params.get("offset") is None for params in polls)  # nothing confirmed


def test_without_a_token_it_says_what_to_set(settings):
    done = run_polling({"TELEGRAM_BOT_TOKEN": ""})
    assert done.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in done.stderr
