"""The frame cache as workers use it: keys only they can make, entries only they can write.

Whoever can write to the Redis or the directory a cache lives in can write
entries. So every entry is sealed: its first :data:`TAG_BYTES` bytes are a
keyed BLAKE2b of its name and content, under a key derived from the workers'
``CELERY_ANIMATE_CACHE_SECRET``. An entry whose seal does not match (forged,
truncated, or written by workers with another secret) is a miss: what a
stranger writes never becomes anyone's frame.

Entry names are keyed hashes too (:meth:`FrameCache.name`), and the namespace
they live in is derived from the secret: workers with different secrets never
read or evict each other's entries by accident, and nobody without the secret
can tell which inputs an entry belongs to.
"""

from __future__ import annotations

import hashlib
import hmac

from celery_animate.cache.base import CacheBackend

#: Bytes of the seal in front of every entry.
TAG_BYTES = 32


def derive(secret: str, purpose: bytes) -> bytes:
    """A 32-byte key for ``purpose`` from the workers' cache secret."""
    return hashlib.blake2b(secret.encode(), digest_size=32, person=purpose.ljust(16, b"\0")).digest()


def namespace_of(secret: str) -> str:
    """The namespace (32 hex digits) of the cache of workers whose cache secret is ``secret``."""
    return derive(secret, b"namespace").hex()[:32]


class FrameCache:
    """Sealed entries in a :class:`CacheBackend`: frames, encoded segments, whole videos."""

    def __init__(self, backend: CacheBackend, secret: str):
        self.backend = backend
        self._name_key = derive(secret, b"names")
        self._seal_key = derive(secret, b"seals")
        self._note_key = derive(secret, b"notes")

    def name(self, kind: str, material: bytes) -> str:
        """The entry name of a ``kind`` (``frame``, ``segment``, ``video``) whose inputs are
        ``material``: a keyed hash, so only holders of the secret can make one."""
        digest = hashlib.blake2b(material, key=self._name_key, digest_size=32).hexdigest()
        return f"{kind}-{digest}"

    def _tag(self, name: str, data: bytes | memoryview) -> bytes:
        mac = hashlib.blake2b(key=self._seal_key, digest_size=TAG_BYTES)
        mac.update(name.encode())
        mac.update(b"\0")
        mac.update(data)
        return mac.digest()

    def get_many(self, names: list[str]) -> list[bytes | None]:
        """The content of each entry, ``None`` where it is missing or its seal does not match."""
        return [self.open(name, entry) for name, entry in zip(names, self.backend.get_many(names),
                                                              strict=True)]

    def open(self, name: str, entry: bytes | None) -> bytes | None:
        """The content of ``entry`` (sealed bytes as a backend keeps them, read from wherever
        they were copied to) if it is entry ``name`` as these workers sealed it; else None."""
        if entry is None or len(entry) < TAG_BYTES:
            return None
        content = memoryview(entry)[TAG_BYTES:]
        valid = hmac.compare_digest(entry[:TAG_BYTES], self._tag(name, content))
        return bytes(content) if valid else None

    def sign(self, text: str) -> str:
        """A keyed hash (hex) of ``text``, for notes that must come from these workers (a record
        field naming an entry), under a key of its own."""
        return hashlib.blake2b(text.encode(), key=self._note_key, digest_size=32).hexdigest()

    def get(self, name: str) -> bytes | None:
        return self.get_many([name])[0]

    def put(self, name: str, data: bytes) -> None:
        """Keep ``data`` as entry ``name``, sealed. Content larger than an eighth of the cache
        is not kept: it would evict most of what the cache holds for one entry."""
        if len(data) * 8 > self.backend.max_bytes:
            return
        self.backend.put(name, self._tag(name, data) + data)
