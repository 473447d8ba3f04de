"""An HTTP server of a stand-in, served from a thread on 127.0.0.1 for the length of a block."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serving(server: ThreadingHTTPServer, handler: type[BaseHTTPRequestHandler]) -> Iterator[None]:
    """`server` answering with `handler` while the block runs; shut down and closed after."""
    server.RequestHandlerClass = handler
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
