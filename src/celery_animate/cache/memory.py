"""A frame cache in this process's memory: for unit tests."""

from __future__ import annotations

from collections import OrderedDict

from celery_animate.cache.base import CacheBackend, check_name


class MemoryCache(CacheBackend):
    """An ordered dict, least recently used first; ``ttl`` is not enforced."""

    def __init__(self, namespace: str, max_bytes: int, ttl: int = 3600):
        super().__init__(namespace, max_bytes, ttl)
        self.entries: OrderedDict[str, bytes] = OrderedDict()

    def get_many(self, names: list[str]) -> list[bytes | None]:
        out = []
        for name in map(check_name, names):
            if name in self.entries:
                self.entries.move_to_end(name)
            out.append(self.entries.get(name))
        return out

    def put(self, name: str, data: bytes) -> None:
        self.entries[check_name(name)] = bytes(data)
        self.entries.move_to_end(name)
        while self.entries and self.size_bytes() > self.max_bytes:
            self.entries.popitem(last=False)

    def size_bytes(self) -> int:
        return sum(map(len, self.entries.values()))

    def clear(self) -> int:
        count = len(self.entries)
        self.entries.clear()
        return count
