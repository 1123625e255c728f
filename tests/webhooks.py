"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that keeps every POST."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    """A webhook receiver on 127.0.0.1: keeps every POST as ``(path, headers, body)``, and when
    (``time.time()``, once its body is read, before it answers) the first POST to each path
    arrived: ``arrivals[path]`` is ``(seconds, body)``. A path starting with ``/slow`` is
    answered only after ``slow_seconds`` the first time."""

    def __init__(self, port: int = 0, slow_seconds: float = 0.0):
        self.requests: list[tuple[str, dict[str, str], str]] = []
        self.arrivals: dict[str, tuple[float, str]] = {}
        self.slow_seen: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.arrivals.setdefault(self.path, (time.time(), body))
                receiver.requests.append((self.path, dict(self.headers), body))
                if self.path.startswith("/slow") and self.path not in receiver.slow_seen:
                    receiver.slow_seen.add(self.path)
                    time.sleep(slow_seconds)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, path: str, timeout: float = 60) -> tuple[float, str]:
        """``arrivals[path]`` once a POST to ``path`` came; ``RuntimeError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while path not in self.arrivals:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no webhook POST to {path} within {timeout} s")
            time.sleep(0.01)
        return self.arrivals[path]

    def to(self, path: str) -> list[tuple[str, dict[str, str], str]]:
        return [request for request in self.requests if request[0] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
