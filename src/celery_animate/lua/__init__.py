"""The Lua scripts Redis runs atomically for celery-animate, one ``.lua`` file each."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import redis


@functools.cache
def _source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text()


def run_script(client: redis.Redis, name: str, keys: list[str], args: list[Any]) -> Any:
    """Run ``<name>.lua`` (EVALSHA, loading the script into Redis when it lacks it)."""
    return client.register_script(_source(name))(keys=keys, args=args)
