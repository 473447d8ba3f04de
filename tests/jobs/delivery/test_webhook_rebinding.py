"""A delivery connects to the address the SSRF guard checked, never to a second lookup of the
name (DNS rebinding), and keeps the URL's Host header and TLS server name. The name service
is a stand-in (`socket.getaddrinfo`, which the guard and httpx's connections both use); the
receivers are real servers on 127.0.0.1 and the delivery runs in the real worker."""

import socket
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from jobs.delivery.webhooks import enqueue_delivery, post_signed
from jobs.queues import connect_redis
from tests.utils.records import ended_with_callback, task_row
from tests.utils.webhook_receiver import CALLBACK_SECRET, webhook_receiver
from tests.utils.workers import run_maintenance_until

REBOUND_HOST = "hooks.rebind.test"
TLS_HOST = "hooks.tls.test"
PUBLIC_ADDRESS = "93.184.216.34"


@pytest.fixture
def lookups(monkeypatch) -> list[str]:
    """Every host looked up, through a resolver stand-in: REBOUND_HOST answers PUBLIC_ADDRESS
    the first time and 127.0.0.1 after (an attacker's DNS), TLS_HOST answers 127.0.0.1, and
    PUBLIC_ADDRESS is refused, so that a connection to it fails here instead of leaving the
    machine; any other host resolves as usual (Postgres, Redis)."""
    real = socket.getaddrinfo
    seen: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        seen.append(host)
        if host == REBOUND_HOST:
            answer = PUBLIC_ADDRESS if seen.count(host) == 1 else "127.0.0.1"
            return real(answer, port, *args, **kwargs)
        if host == TLS_HOST:
            return real("127.0.0.1", port, *args, **kwargs)
        if host == PUBLIC_ADDRESS:
            raise socket.gaierror(socket.EAI_NONAME, "not reachable from the tests")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


def test_a_name_rebound_to_loopback_after_the_check_is_not_reached(settings, lookups):
    with webhook_receiver() as receiver:
        port = urlsplit(receiver.url).port
        task_id = ended_task(settings, f"http://{REBOUND_HOST}:{port}/hook")
        run_maintenance_until(lambda: task_row(settings, task_id).webhook_attempts == 1)

    assert receiver.requests == []
    assert task_row(settings, task_id).webhook_last_status.startswith("error: ConnectError")
    # The name was looked up once, by the guard; the connection went to what it checked.
    assert [h for h in lookups if h in (REBOUND_HOST, PUBLIC_ADDRESS)] == [
        REBOUND_HOST,
        PUBLIC_ADDRESS,
    ]


def test_an_https_callback_keeps_its_host_and_tls_name(settings, lookups, monkeypatch, tmp_path):
    cert, key = self_signed_certificate(tmp_path, TLS_HOST)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # httpx trusts it (trust_env)
    allow_loopback = settings.model_copy(update={"WEBHOOK_ALLOW_PRIVATE": True})

    with tls_receiver(cert, key) as (port, hosts):
        url = f"https://{TLS_HOST}:{port}/hook"
        assert post_signed(url, CALLBACK_SECRET, b"{}", allow_loopback) == (True, "200")

    assert hosts == [f"{TLS_HOST}:{port}"]
    assert lookups.count(TLS_HOST) == 1


def ended_task(settings, callback_url: str) -> uuid.UUID:
    task = ended_with_callback(settings, callback_url, text="hello")
    with connect_redis(settings.REDIS_URL) as redis:
        assert enqueue_delivery(redis, task.id)
    return task.id


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@contextmanager
def tls_receiver(cert: Path, key: Path) -> Iterator[tuple[int, list[str]]]:
    """A webhook receiver stand-in over HTTPS on 127.0.0.1 (the one in tests/utils speaks
    plain HTTP): answers 200 and records each request's Host header."""
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            hosts.append(self.headers["Host"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], hosts
    finally:
        server.shutdown()
        server.server_close()
