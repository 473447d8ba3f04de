"""A stand-in for Telegram's Bot API on loopback: the methods the adapter calls (getFile, file
download, sendMessage, editMessageText, getUpdates, deleteWebhook), answering as Telegram
does, with every call recorded. Messages keep their latest text so a test can read a chat."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import SecretStr

from tests.utils.loopback import serving

TOKEN = "123456:stand-in-token"
SECRET = "stand-in-webhook-secret"


def telegram_env(url: str) -> dict[str, str]:
    """Environment for processes (worker, uvicorn, scripts) with the bot on, talking to the
    stand-in at `url`; replies retry after 1 s."""
    return {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_BASE": url, "WEBHOOK_RETRY_DELAYS": "1,1,1"}  # fmt: skip


def telegram_overrides(url: str, **more: Any) -> dict[str, Any]:
    """The same as Settings fields, for `settings.model_copy(update=...)`."""
    return {"TELEGRAM_BOT_TOKEN": SecretStr(TOKEN), "TELEGRAM_WEBHOOK_SECRET": SecretStr(SECRET),
            "TELEGRAM_API_BASE": url, "WEBHOOK_RETRY_DELAYS": "1,1,1", **more}  # fmt: skip


@dataclass
class Message:
    chat_id: int
    message_id: int
    text: str
    reply_to: int | None
    edits: int = 0


@dataclass
class BotApiStandIn:
    url: str
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    # file_id -> path: served as a `--local` Bot API server does, by absolute path on disk
    local_files: dict[str, str] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    # method -> (error_code, description, retry_after) answers to give before succeeding
    failures: dict[str, list[tuple[int, str, int | None]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def methods(self) -> list[str]:
        with self.lock:
            return [method for method, _ in self.calls]

    def sent(self, chat_id: int) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if m.chat_id == chat_id]

    def answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.calls.append((method, params))
            pending = self.failures.get(method)
            if pending:
                code, description, retry_after = pending.pop(0)
                body: dict[str, Any] = {"ok": False, "error_code": code,
                                        "description": description}  # fmt: skip
                if retry_after is not None:
                    body["parameters"] = {"retry_after": retry_after}
                return code, body
            return self._perform(method, params)

    def _perform(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "getFile":
            file_id = params["file_id"]
            if file_id in self.local_files:
                return ok({"file_id": file_id, "file_path": self.local_files[file_id]})
            if file_id not in self.files:
                return error(400, "Bad Request: invalid file_id")
            return ok({"file_id": file_id, "file_size": len(self.files[file_id]),
                       "file_path": f"files/{file_id}"})  # fmt: skip
        if method == "sendMessage":
            if len(params["text"].encode("utf-16-le")) // 2 > 4096:
                return error(400, "Bad Request: message is too long")
            chat_id = int(params["chat_id"])
            reply_to = (params.get("reply_parameters") or {}).get("message_id")
            message = Message(chat_id, 1000 + len(self.messages), params["text"], reply_to)
            self.messages.append(message)
            return ok({"message_id": message.message_id, "chat": {"id": chat_id},
                       "text": message.text})  # fmt: skip
        if method == "editMessageText":
            if len(params["text"].encode("utf-16-le")) // 2 > 4096:
                return error(400, "Bad Request: MESSAGE_TOO_LONG")
            for message in self.messages:
                if (message.chat_id, message.message_id) == (params["chat_id"],
                                                              params["message_id"]):  # fmt: skip
                    if message.text == params["text"]:
                        return error(400, "Bad Request: message is not modified")
                    message.text, message.edits = params["text"], message.edits + 1
                    return ok({"message_id": message.message_id, "text": message.text})
            return error(400, "Bad Request: message to edit not found")
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            ready = [u for u in self.updates if u["update_id"] >= offset]
            return ok(ready[: int(params.get("limit") or 100)])
        if method == "deleteWebhook":
            return ok(True)
        return error(404, "Not Found: method not found")


def ok(result: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"ok": True, "result": result}


def error(code: int, description: str) -> tuple[int, dict[str, Any]]:
    return code, {"ok": False, "error_code": code, "description": description}


@contextmanager
def bot_api_standin() -> Iterator[BotApiStandIn]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = BotApiStandIn(url=f"http://127.0.0.1:{server.server_address[1]}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            prefix = f"/file/bot{TOKEN}/files/"
            data = state.files.get(self.path.removeprefix(prefix)) if self.path.startswith(
                prefix) else None  # fmt: skip
            with state.lock:
                state.calls.append(("download", {"path": self.path}))
            if data is None:
                self.reply(404, b'{"ok":false,"error_code":404,"description":"Not Found"}')
            else:
                self.reply(200, data, "application/octet-stream")

        def do_POST(self) -> None:
            prefix = f"/bot{TOKEN}/"
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.startswith(prefix):
                status, answer = error(401, "Unauthorized")
            else:
                params = json.loads(body or b"{}")
                if self.path.endswith("/getUpdates") and not state.updates:
                    time.sleep(min(float(params.get("timeout") or 0), 0.5))  # long poll
                status, answer = state.answer(self.path.removeprefix(prefix), params)
            self.reply(status, json.dumps(answer).encode())

        def reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(server, Handler):
        yield state
