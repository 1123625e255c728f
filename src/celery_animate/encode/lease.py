"""The encode lease: at most one encoder of a job may publish, fenced by a generation number.

Taking the lease increments the job's encode generation; the holder's
temporary file carries that number, and before anything that touches the
output or the job's state it checks the lease is still its own. A
heartbeat thread renews it every third of its lifetime, independently of
how fast frames encode, so a slow encode (pvio's start-up, ffmpeg's final
flush) never loses it. An encoder that died stops renewing, and the lease
is free again after ``ttl`` seconds.
"""

from __future__ import annotations

import contextlib
import secrets
import threading

import redis

from celery_animate import keys
from celery_animate.errors import EncodeAbandoned
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.lua import run_script


class EncodeLease:
    """The right to encode and publish one job's video (or, with ``part=":seg<k>"``, to encode
    and keep one of its segments), while :meth:`check` passes."""

    def __init__(self, record: JobRecord, ttl: float = 10.0, part: str = ""):
        self.record = record
        self.ttl = ttl
        self.key = keys.lease(record.job_id, part)
        self._generation_key = keys.lease_generation(record.job_id, part)
        self.generation = 0
        self._value = ""
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self, name: str, key_names: list[str], args: list) -> int:
        return run_script(self.record.client, name, key_names, args)

    def acquire(self) -> bool:
        """Take the lease and start renewing it; False if another encoder holds it."""
        token = secrets.token_hex(8)
        generation = self._run("lease_acquire", [self.key, self._generation_key],
                               [token, int(self.ttl * 1000), self.record.ttl])
        if not generation:
            return False
        self.generation, self._value = int(generation), f"{generation}:{token}"
        self._thread = threading.Thread(target=self._heartbeat, name="encode-lease", daemon=True)
        self._thread.start()
        return True

    def _renew(self, ms: int) -> bool:
        return self._run("lease_renew", [self.key], [self._value, ms]) == 1

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self._renew(int(self.ttl * 1000)):
                    self._lost.set()
                    return
            except redis.RedisError:
                continue  # a blip: try again; the lease outlives two missed beats

    def held(self) -> bool:
        """True while the lease is still ours (asks Redis)."""
        if self._lost.is_set() or not self._value:
            return False
        return self.record.client.get(self.key) == self._value.encode()

    def commit(self) -> None:
        """Claim the right to publish now; :class:`EncodeAbandoned` if the job ended or the lease
        is gone. After it, a cancel no longer stops this job's video."""
        if self._lost.is_set() or not lifecycle.commit_publish(self.record, self.key, self._value):
            raise EncodeAbandoned("the job ended or the encode lease was lost before publishing")

    def check(self) -> None:
        """Raise :class:`EncodeAbandoned` unless the lease is still ours."""
        if not self.held():
            raise EncodeAbandoned(f"encode lease {self.generation} was lost to another encoder")

    def release(self) -> None:
        """Stop renewing and give the lease back (a no-op if it was lost)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._value:
            with contextlib.suppress(redis.RedisError):  # it expires by itself
                self._renew(0)
