"""The interface every frame-cache backend implements: opaque entries by name, bounded in bytes.

A backend only keeps bytes; what they mean and whether they can be trusted is
:class:`celery_animate.cache.sealed.FrameCache`'s business. Entry names are
checked here, since they name Redis keys and files.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from celery_animate.errors import InvalidArgument

#: An entry's name: what it holds, and a 256-bit key in hex.
ENTRY_NAME = re.compile(r"(frame|segment|video)-[0-9a-f]{64}")
#: A cache's namespace: 128 bits in hex, derived from the workers' cache key.
NAMESPACE = re.compile(r"[0-9a-f]{32}")


def check_name(name: object) -> str:
    """``name`` if it is an entry name (:data:`ENTRY_NAME`); else :class:`InvalidArgument`."""
    if not isinstance(name, str) or not ENTRY_NAME.fullmatch(name):
        raise InvalidArgument(f"{name!r} is not a frame-cache entry name")
    return name


class CacheBackend(ABC):
    """Entries of one namespace, the least recently used evicted first once they hold more than
    ``max_bytes``; an entry nobody read or wrote for ``ttl`` seconds goes too."""

    def __init__(self, namespace: str, max_bytes: int, ttl: int):
        if not NAMESPACE.fullmatch(namespace):
            raise InvalidArgument(f"{namespace!r} is not a frame-cache namespace")
        self.namespace = namespace
        self.max_bytes = max_bytes
        self.ttl = ttl

    @abstractmethod
    def get_many(self, names: list[str]) -> list[bytes | None]:
        """The entries in order (``None`` where one is missing); those found count as used."""

    @abstractmethod
    def put(self, name: str, data: bytes) -> None:
        """Keep ``data`` as entry ``name`` (replacing it whole), then evict down to the bound."""

    @abstractmethod
    def size_bytes(self) -> int:
        """Bytes the namespace's entries hold (as the backend counts them)."""

    @abstractmethod
    def clear(self) -> int:
        """Remove every entry of the namespace; return how many there were."""
