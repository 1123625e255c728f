"""Frame stores: where rendered frames wait for the encoder, and encoded segments for the join.

Three backends behind :class:`FrameStore`: Redis (the default), a directory
shared by all machines, and process memory (tests); and a directory that spills
into a second one when its disk is full (one machine's shared memory, then its
disk). :func:`open_frame_store` builds the one the settings name.
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
from celery_animate.stores.spilling import SpillingFrameStore

__all__ = ["DirectoryFrameStore", "FrameStore", "MemoryFrameStore", "RedisFrameStore",
           "SpillingFrameStore", "open_frame_store"]


def open_frame_store(settings: Settings) -> FrameStore:
    """The store ``settings.frame_store`` names: ``"redis"``, a ``redis://`` URL, or ``file:///dir``;
    with ``settings.frame_spill`` (``file:///dir``), a directory store that spills there.

    Only ever called with a process's own settings: a job never chooses where
    workers keep frames. Frames expire after ``settings.frame_ttl`` seconds.
    Raises :class:`ConfigurationError` for anything else, and for a spill folder beside a
    frame store that is not a directory.
    """
    spec = settings.frame_store
    store = _open(spec, settings)
    if settings.frame_spill is None:
        return store
    if not isinstance(store, DirectoryFrameStore):
        raise ConfigurationError(
            f"CELERY_ANIMATE_FRAME_SPILL is set, but frames do not go to a folder (the frame "
            f"store is {spec!r}): only a file:/// frame store spills")
    spill = _open(settings.frame_spill, settings)
    if not isinstance(spill, DirectoryFrameStore):
        raise ConfigurationError(
            f"frame spill folder {settings.frame_spill!r}: use file:///absolute/path")
    return SpillingFrameStore(store, spill)


def _open(spec: str, settings: Settings) -> FrameStore:
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
