"""A frame cache in Redis, beside the frames: one string per entry, with an expiry."""

from __future__ import annotations

import redis

from celery_animate import keys
from celery_animate.cache.base import CacheBackend, check_name
from celery_animate.lua import run_script

#: Entries read with one script, at most (a chunk's frames are read in a few round trips).
BATCH = 256


class RedisCache(CacheBackend):
    """Entries ``celery_animate:cache:<namespace>:<name>``; the recency set and size hash that
    bound them are kept by the ``cache_put`` and ``cache_get`` scripts, atomically, whatever the
    number of workers writing at once."""

    def __init__(self, client: redis.Redis, namespace: str, max_bytes: int, ttl: int):
        super().__init__(namespace, max_bytes, ttl)
        self.client = client

    def get_many(self, names: list[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for start in range(0, len(names), BATCH):
            batch = [keys.cache_entry(self.namespace, check_name(name))
                     for name in names[start:start + BATCH]]
            out.extend(run_script(self.client, "cache_get",
                                  [keys.cache_recency(self.namespace), *batch], [self.ttl]))
        return out

    def put(self, name: str, data: bytes) -> None:
        run_script(self.client, "cache_put",
                   [keys.cache_entry(self.namespace, check_name(name)),
                    keys.cache_recency(self.namespace), keys.cache_sizes(self.namespace)],
                   [data, self.max_bytes, self.ttl])

    def size_bytes(self) -> int:
        return int(self.client.hget(keys.cache_sizes(self.namespace), "total") or 0)

    def clear(self) -> int:
        recency = keys.cache_recency(self.namespace)
        names = self.client.zrange(recency, 0, -1)
        for start in range(0, len(names), 1000):
            self.client.unlink(*names[start:start + 1000])
        self.client.unlink(recency, keys.cache_sizes(self.namespace))
        return len(names)
