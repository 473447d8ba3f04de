"""A stand-in for a client's webhook endpoint (declared as such: the one thing on the other
side of a webhook that a test cannot have for real): an HTTP server on 127.0.0.1 that records
every POST and answers with the statuses it is told to give first, then 200."""

import hashlib
import hmac
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.utils.loopback import serving

# What the tests' tasks sign their webhooks with.
CALLBACK_SECRET = "s3cret-for-tests"


@dataclass
class Receiver:
    url: str
    answers: list[int] = field(default_factory=list)  # statuses to give first, then 200
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers.items()), body))
            self.send_response(state.answers.pop(0) if state.answers else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serving(server, Handler):
        yield state


def verify(secret: str, headers: dict[str, str], body: bytes, max_age: int = 300) -> bool:
    """What the README tells a receiver to do with a delivery's signature."""
    timestamp = headers["X-ASR-Timestamp"]
    if abs(time.time() - int(timestamp)) > max_age:
        return False
    message = f"{timestamp}.".encode() + body
    expected = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-ASR-Signature"])
