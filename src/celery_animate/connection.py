"""Redis connections: one client per URL and process, shared by job records and frame stores."""

from __future__ import annotations

from collections import OrderedDict

import redis

from celery_animate.config import Settings
from celery_animate.errors import ConfigurationError

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

#: Clients kept per process; URLs come from settings, so a few cover every use.
MAX_CLIENTS = 8

_clients: OrderedDict[tuple[str, float], redis.Redis] = OrderedDict()


def redis_client(url: str, timeout: float = 30) -> redis.Redis:
    """A client for ``url``, reused within this process (redis-py reconnects after a fork).

    Connecting, and every command, fails after ``timeout`` seconds rather
    than hanging on a Redis that stopped answering.
    """
    key = (url, timeout)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = redis.Redis.from_url(
            url, health_check_interval=30, socket_timeout=timeout, socket_connect_timeout=timeout)
        while len(_clients) > MAX_CLIENTS:
            _clients.popitem(last=False)[1].close()
    _clients.move_to_end(key)
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
    return redis_client(url, settings.redis_timeout)
