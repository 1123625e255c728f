"""The frame cache: frames, encoded segments and videos kept across jobs, keyed by their inputs.

:func:`open_frame_cache` builds the cache a process's settings name, sealed
with the workers' secret (:mod:`celery_animate.cache.sealed`); the keys
themselves are derived by :mod:`celery_animate.render.cache_key`. Three
backends behind :class:`CacheBackend`: Redis, a directory, process memory.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from celery_animate.cache.base import CacheBackend
from celery_animate.cache.directory import DirectoryCache
from celery_animate.cache.memory import MemoryCache
from celery_animate.cache.redis import RedisCache
from celery_animate.cache.sealed import FrameCache, namespace_of
from celery_animate.config import REDIS_FRAME_STORE, Settings
from celery_animate.connection import redis_client
from celery_animate.errors import ConfigurationError

__all__ = ["CacheBackend", "DirectoryCache", "FrameCache", "MemoryCache", "RedisCache",
           "open_frame_cache"]

#: Seconds per day.
DAY = 24 * 3600


def open_frame_cache(settings: Settings) -> FrameCache | None:
    """The frame cache of a process with ``settings``; None when it has no cache secret.

    It lives where ``settings.cache_store`` says (a ``redis://`` URL or ``file:///dir``), else
    beside the frames: in the frame store's Redis, or in a ``cache`` folder of its directory.
    Raises :class:`ConfigurationError` for a location it cannot use.
    """
    if not settings.cache_secret:
        return None
    spec = settings.cache_store or settings.frame_store
    namespace = namespace_of(settings.cache_secret)
    ttl = settings.cache_days * DAY
    if spec == REDIS_FRAME_STORE:
        spec = settings.result_backend or ""
    parsed = urlparse(spec)
    if parsed.scheme in ("redis", "rediss", "unix"):
        backend: CacheBackend = RedisCache(redis_client(spec, settings.redis_timeout), namespace,
                                           settings.cache_bytes, ttl)
    elif parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        root = Path(unquote(parsed.path))
        backend = DirectoryCache(root if settings.cache_store else root / "cache", namespace,
                                 settings.cache_bytes, ttl)
    else:
        raise ConfigurationError(
            f"frame cache {spec!r}: CELERY_ANIMATE_CACHE_STORE must be a redis:// URL or "
            "file:///absolute/dir")
    return FrameCache(backend, settings.cache_secret)
