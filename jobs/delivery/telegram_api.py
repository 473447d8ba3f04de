"""A small Telegram Bot API client: the calls the adapter makes (getFile, file download,
sendMessage, editMessageText, getUpdates, deleteWebhook) and Telegram's message-length rule.
Used by the API (the webhook intake) and the delivery worker (the transcript replies).

TELEGRAM_API_BASE points it at a self-hosted Bot API server, which also lifts the 20 MB
download limit; in that server's `--local` mode getFile answers with an absolute path on
its own disk, which is read directly when this host can see it.
"""

import shutil
from pathlib import Path
from typing import IO, Any

import httpx

from app.config import Settings

# The header Telegram sends the setWebhook secret_token back in (and the polling relay too).
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's limit on a message, counted in UTF-16 code units.
MESSAGE_LIMIT = 4096
CALL_TIMEOUT_SECONDS = 30
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


class TelegramError(Exception):
    """A Bot API call failed. `retry_after` is set when Telegram asks to slow down (429);
    `status` is Telegram's error code, None when it could not be reached."""

    def __init__(
        self, method: str, description: str, status: int | None = None,
        retry_after: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(f"{method}: {description}")
        self.description = description
        self.status = status
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        """Asking again cannot help: a bad request, a blocked bot, a chat that is gone."""
        return self.status in (400, 401, 403, 404)


class FileTooLarge(Exception):
    """The file is bigger than we take; the message says the limit."""


class BotApi:
    def __init__(self, settings: Settings) -> None:
        assert settings.TELEGRAM_BOT_TOKEN is not None, "the Telegram adapter is off"
        token = settings.TELEGRAM_BOT_TOKEN.get_secret_value()
        base = settings.TELEGRAM_API_BASE.rstrip("/")
        self._method_url = f"{base}/bot{token}/"
        self._file_url = f"{base}/file/bot{token}/"
        self._http = httpx.Client(timeout=CALL_TIMEOUT_SECONDS)

    def __enter__(self) -> "BotApi":
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def call(self, method: str, http_timeout: float = CALL_TIMEOUT_SECONDS, **params: Any) -> Any:
        """One Bot API method; its `result`, or TelegramError with Telegram's description.
        (`http_timeout` is ours; a long-polling getUpdates takes a `timeout` of its own.)"""
        payload = {name: value for name, value in params.items() if value is not None}
        try:
            response = self._http.post(
                self._method_url + method, json=payload, timeout=http_timeout
            )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # The URL holds the token: name the error, never the request.
            raise TelegramError(method, f"{type(exc).__name__}") from None
        if not isinstance(body, dict) or not body.get("ok"):
            body = body if isinstance(body, dict) else {}
            retry_after = (body.get("parameters") or {}).get("retry_after")
            description = body.get("description") or f"HTTP {response.status_code}"
            status = body.get("error_code", response.status_code)
            raise TelegramError(method, str(description), status, retry_after)
        return body.get("result")

    def send_message(self, chat_id: int, text: str, reply_to: int | None = None) -> int:
        """Plain text (no parse mode: a transcript must never be read as markup); returns
        the new message's id."""
        reply = {"message_id": reply_to, "allow_sending_without_reply": True} if reply_to else None
        message = self.call("sendMessage", chat_id=chat_id, text=text, reply_parameters=reply)
        return int(message["message_id"])

    def edit_message(self, chat_id: int, message_id: int, text: str) -> None:
        try:
            self.call("editMessageText", chat_id=chat_id, message_id=message_id, text=text)
        except TelegramError as exc:
            if "message is not modified" not in exc.description:  # already says this
                raise

    def download(self, file_id: str, into: IO[bytes], max_bytes: int) -> None:
        """getFile, then stream the file into `into`, refusing more than `max_bytes`."""
        file_path = self.call("getFile", file_id=file_id).get("file_path")
        if not file_path:
            raise TelegramError("getFile", "Telegram gave no file path (file too big?)")
        local = Path(file_path)
        if local.is_absolute() and local.is_file():  # a local-mode Bot API server
            if local.stat().st_size > max_bytes:
                raise FileTooLarge(f"the file is larger than {max_bytes // 2**20} MB")
            with local.open("rb") as source:
                shutil.copyfileobj(source, into)
            return
        written = 0
        try:
            with self._http.stream("GET", self._file_url + file_path) as response:
                if response.status_code != 200:
                    raise TelegramError("download", f"HTTP {response.status_code}",
                                        response.status_code)  # fmt: skip
                for chunk in response.iter_bytes(DOWNLOAD_CHUNK_BYTES):
                    written += len(chunk)
                    if written > max_bytes:
                        raise FileTooLarge(f"the file is larger than {max_bytes // 2**20} MB")
                    into.write(chunk)
        except httpx.HTTPError as exc:
            raise TelegramError("download", type(exc).__name__) from None


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """`text` in pieces Telegram accepts: cut at a paragraph, line or sentence end in the
    second half of a piece, else at the last space, mid-word only where there is none."""
    pieces: list[str] = []
    rest = text.strip()
    while telegram_length(rest) > limit:
        head = _longest_prefix(rest, limit)
        cut = _natural_cut(head, ends_a_word=rest[len(head)].isspace())
        pieces.append(head[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _longest_prefix(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


# Paragraph, line and sentence ends, best first; taken in the second half of a piece.
_ENDS = (("\n\n", "\n"), (". ", "? ", "! ", "… "))


def _natural_cut(head: str, ends_a_word: bool) -> int:
    for separators in _ENDS:
        at, separator = max((head.rfind(s), s) for s in separators)
        if at >= len(head) // 2:
            return at + len(separator)
    if ends_a_word:
        return len(head)
    at = head.rfind(" ")
    return at + 1 if at > 0 else len(head)
