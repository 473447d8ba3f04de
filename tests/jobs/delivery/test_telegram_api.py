"""The Bot API client: downloads (from the file URL, or from disk for a local Bot API server)
with the size limit, errors that say whether to retry, and Telegram's message length."""

import io
from pathlib import Path

import pytest

from jobs.delivery.telegram_api import BotApi, FileTooLarge, TelegramError, split_message
from tests.utils.bot_api_standin import (
    TOKEN,
    bot_api_standin,
    telegram_overrides,
)


def bot_for(settings, url: str) -> BotApi:
    return BotApi(settings.model_copy(update=telegram_overrides(url)))


def test_a_file_is_downloaded_through_its_file_path(settings):
    with bot_api_standin() as standin, bot_for(settings, standin.url) as bot:
        standin.files["f1"] = b"x" * 3000
        into = io.BytesIO()
        bot.download("f1", into, max_bytes=10_000)
        assert into.getvalue() == b"x" * 3000
        assert standin.methods() == ["getFile", "download"]


def test_a_local_bot_api_server_file_is_read_from_disk(settings, tmp_path: Path):
    local = tmp_path / "voice.oga"
    local.write_bytes(b"y" * 5000)
    with bot_api_standin() as standin, bot_for(settings, standin.url) as bot:
        standin.local_files["f2"] = str(local)
        into = io.BytesIO()
        bot.download("f2", into, max_bytes=10_000)
        assert into.getvalue() == b"y" * 5000
        assert "download" not in standin.methods()
        with pytest.raises(FileTooLarge):
            bot.download("f2", io.BytesIO(), max_bytes=4000)


def test_a_download_over_the_limit_stops_early(settings):
    with bot_api_standin() as standin, bot_for(settings, standin.url) as bot:
        standin.files["big"] = b"z" * (3 * 1024 * 1024)
        into = io.BytesIO()
        with pytest.raises(FileTooLarge, match="larger than 1 MB"):
            bot.download("big", into, max_bytes=1024 * 1024)
        assert len(into.getvalue()) <= 1024 * 1024


def test_errors_say_whether_asking_again_can_help(settings):
    with bot_api_standin() as standin, bot_for(settings, standin.url) as bot:
        standin.failures["sendMessage"] = [
            (429, "Too Many Requests: retry after 3", 3),
            (403, "Forbidden: bot was blocked by the user", None),
        ]
        with pytest.raises(TelegramError) as slow_down:
            bot.send_message(1, "hi")
        assert (slow_down.value.retry_after, slow_down.value.permanent) == (3, False)
        with pytest.raises(TelegramError) as blocked:
            bot.send_message(1, "hi")
        assert blocked.value.permanent
    with bot_for(settings, "http://127.0.0.1:9") as gone:  # nothing listens there
        with pytest.raises(TelegramError) as unreachable:
            gone.send_message(1, "hi")
        assert not unreachable.value.permanent and TOKEN not in str(unreachable.value)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, ["short"]),
        ("one two three four five", 10, ["one two", "three four", "five"]),
        (
            "A short sentence here. Then another one follows.",
            30,
            ["A short sentence here.", "Then another one follows."],
        ),
        ("Line number one\nline two goes on", 20, ["Line number one", "line two goes on"]),
        ("abcdefghijkl", 5, ["abcde", "fghij", "kl"]),  # no space: cut mid-word
        ("🎙️🎙️🎙️", 4, ["🎙️", "🎙️", "🎙️"]),  # each is three UTF-16 units
        ("  ", 10, []),
    ],
)
def test_split_message(text, limit, expected):
    assert split_message(text, limit) == expected
