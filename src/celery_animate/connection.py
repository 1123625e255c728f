"""Redis connections: one client per URL and process, shared by job records and frame stores."""

from __future__ import annotations

import redis

from .config import Settings
from .errors import ConfigurationError

_clients: dict[str, redis.Redis] = {}

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def redis_client(url: str) -> redis.Redis:
    """A client for ``url``, reused within this process (redis-py reconnects after a fork)."""
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, health_check_interval=30)
    return client


def job_redis(settings: Settings) -> redis.Redis:
    """The Redis that holds job records: the result backend.

    Raises :class:`ConfigurationError` when none is configured or it is not Redis.
    """
    url = settings.result_backend
    if not url:
        raise ConfigurationError(
            "no cluster configured: set CELERY_BROKER_URL (and optionally CELERY_RESULT_BACKEND) "
            "to a redis:// URL, or use `celery-animate render`, which starts a private one"
        )
    if not url.startswith(REDIS_SCHEMES):
        raise ConfigurationError(
            f"CELERY_RESULT_BACKEND is {url!r}, but celery-animate keeps job state and progress "
            "in Redis: set it to a redis:// or rediss:// URL"
        )
    return redis_client(url)
