"""Unit tests: one module at a time, no servers, no worker processes (``pytest -m "not cluster"``).

Redis-backed code runs against fakeredis, which executes the Lua scripts with
a real Lua interpreter.
"""

import fakeredis
import pytest


@pytest.fixture
def fake_redis():
    return fakeredis.FakeRedis()
