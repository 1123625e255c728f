"""Frame stores: where rendered frames wait for the encoder, and encoded segments for the join.

Three backends behind :class:`FrameStore`: Redis (the default), a directory
shared by all machines, and process memory (tests). :func:`open_frame_store`
builds the one a setting names.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from celery_animate.config import REDIS_FRAME_STORE, Settings
from celery_animate.connection import redis_client
from celery_animate.errors import ConfigurationError
from celery_animate.stores.base import FrameStore
from celery_animate.stores.directory import DirectoryFrameStore
from celery_animate.stores.memory import MemoryFrameStore
from celery_animate.stores.redis import RedisFrameStore

__all__ = ["DirectoryFrameStore", "FrameStore", "MemoryFrameStore", "RedisFrameStore",
           "open_frame_store"]


def open_frame_store(settings: Settings) -> FrameStore:
    """The store ``settings.frame_store`` names: ``"redis"``, a ``redis://`` URL, or ``file:///dir``.

    Only ever called with a process's own settings: a job never chooses where
    workers keep frames. Frames expire after ``settings.frame_ttl`` seconds.
    Raises :class:`ConfigurationError` for anything else.
    """
    spec = settings.frame_store
    if spec == REDIS_FRAME_STORE:
        if not settings.result_backend:
            raise ConfigurationError(
                "the 'redis' frame store needs CELERY_RESULT_BACKEND or CELERY_BROKER_URL")
        return RedisFrameStore(redis_client(settings.result_backend, settings.redis_timeout),
                               settings.frame_ttl)
    parsed = urlparse(spec)
    if parsed.scheme in ("redis", "rediss", "unix"):
        return RedisFrameStore(redis_client(spec, settings.redis_timeout), settings.frame_ttl)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConfigurationError(f"frame store {spec!r}: file URLs must be file:///absolute/path")
        return DirectoryFrameStore(unquote(parsed.path), settings.frame_ttl)
    raise ConfigurationError(
        f"unknown frame store {spec!r}: use 'redis', a redis:// URL, or file:///shared/scratch/dir"
    )
