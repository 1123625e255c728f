"""Redis key names: one module builds them all, byte for byte what earlier versions wrote."""

import ast
import re
import sys
from importlib import resources

import pytest

from celery_animate import keys
from celery_animate.encode.lease import EncodeLease
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.lua import run_script
from celery_animate.options import RenderOptions
from celery_animate.stores.redis import RedisFrameStore

JOB = "0123456789abcdef0123456789abcdef"
#: Shares all but the last digit with JOB: a pattern that is one character too loose matches it.
NEIGHBOUR = JOB[:-1] + "0"


def test_each_name_is_the_string_stored_data_uses():
    assert keys.PREFIX == "celery_animate"
    assert keys.JOB_INDEX == "celery_animate:jobs"
    assert keys.ACTIVE_JOBS == "celery_animate:active"
    assert keys.RECOVERY_LOCK == "celery_animate:recovery"
    assert keys.job(JOB) == f"celery_animate:job:{JOB}"
    assert keys.ended_channel(JOB) == f"celery_animate:job:{JOB}:ended"
    assert keys.chunk(JOB, 7) == f"celery_animate:job:{JOB}:chunk:7"
    assert keys.segments(JOB) == f"celery_animate:job:{JOB}:segments"
    assert keys.lease(JOB) == f"celery_animate:job:{JOB}:lease"
    assert keys.lease(JOB, ":seg3") == f"celery_animate:job:{JOB}:lease:seg3"
    assert keys.lease_generation(JOB) == f"celery_animate:job:{JOB}:lease:generation"
    assert keys.lease_generation(JOB, ":seg3") == f"celery_animate:job:{JOB}:lease:seg3:generation"
    assert keys.frame(JOB, 12) == f"celery_animate:frame:{JOB}:12"
    assert keys.job_pattern(JOB) == f"celery_animate:job:{JOB}*"


def test_the_code_that_reads_and_writes_keys_uses_these_names(fake_redis):
    record = JobRecord(fake_redis, JOB)
    assert record.key == keys.job(JOB)
    assert record.ended_channel == keys.ended_channel(JOB)
    assert record.chunk_key(4) == keys.chunk(JOB, 4)
    assert record.segments_key == keys.segments(JOB)
    assert EncodeLease(record).key == keys.lease(JOB)
    assert EncodeLease(record, part=":seg2").key == keys.lease(JOB, ":seg2")
    assert RedisFrameStore.key(JOB, 9) == keys.frame(JOB, 9)


def test_keys_module_imports_only_the_standard_library():
    tree = ast.parse(resources.files("celery_animate").joinpath("keys.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names) | {"__future__"}


def test_no_lua_script_builds_a_key_name():
    for path in resources.files("celery_animate.lua").iterdir():
        if not path.name.endswith(".lua"):
            continue
        code = "\n".join(line.split("--")[0] for line in path.read_text().splitlines())
        assert "celery_animate" not in code, path.name
        assert not re.search(r"KEYS\[\d+\]\s*\.\.", code), path.name  # KEYS[1] .. ':suffix'


def _make_every_key(client, job_id: str, leases: list) -> None:
    """Write a job's keys through the code that writes them in production."""
    record = JobRecord(client, job_id, ttl=1000)
    for chunk_no in range(2):
        record.stage_chunk(chunk_no, b"\x90", ttl=50)
    lifecycle.create(record, JobSpec("m:C", b"\x80", "/o.mp4", 4, 2, RenderOptions(fps=10)))
    assert record.finish_segment(1, 2)
    for part in ("", ":seg0"):
        lease = EncodeLease(record, ttl=30.0, part=part)
        leases.append(lease)
        assert lease.acquire()
    RedisFrameStore(client, ttl=60).put(job_id, 0, b"frame")


def test_job_pattern_matches_every_key_of_the_job_and_none_of_another(fake_redis):
    leases: list[EncodeLease] = []
    try:
        _make_every_key(fake_redis, JOB, leases)
        _make_every_key(fake_redis, NEIGHBOUR, leases)
        matched = {raw.decode() for raw in fake_redis.scan_iter(match=keys.job_pattern(JOB), count=10)}
        everything = {raw.decode() for raw in fake_redis.keys("*")}
    finally:
        for lease in leases:
            lease.release()
    expected = {keys.job(JOB), keys.chunk(JOB, 0), keys.chunk(JOB, 1), keys.segments(JOB),
                keys.lease(JOB), keys.lease_generation(JOB),
                keys.lease(JOB, ":seg0"), keys.lease_generation(JOB, ":seg0")}
    assert matched == expected
    # ... and that is every key of the job under its hash's name (its frames live apart).
    assert {key for key in everything if key.startswith(keys.job(JOB))} == expected
    assert keys.frame(JOB, 0) in everything and keys.frame(JOB, 0) not in matched


def test_job_pattern_escapes_glob_characters():
    # A checked id never has any; the escape keeps a bad one from matching other jobs' keys.
    assert keys.job_pattern("a*b?[c]") == r"celery_animate:job:a\*b\?\[c\]*"


@pytest.mark.parametrize("outcome", [lifecycle.CANCEL, ValueError("x")], ids=["cancelled", "failed"])
def test_ending_a_job_leaves_the_active_set_and_publishes_the_end(fake_redis, outcome):
    records = [JobRecord(fake_redis, job_id, ttl=1000) for job_id in (JOB, NEIGHBOUR)]
    for record in records:
        lifecycle.create(record, JobSpec("m:C", b"\x80", "/o.mp4", 4, 2, RenderOptions(fps=10)))
    pubsub = fake_redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.ended_channel(JOB), keys.ended_channel(NEIGHBOUR))
    try:
        assert lifecycle.begin_rendering(records[0])  # not an end: nothing leaves, nothing published
        assert fake_redis.zscore(keys.ACTIVE_JOBS, JOB) is not None
        assert pubsub.get_message(timeout=0.2) is None
        assert lifecycle.end_job(records[0], outcome)
        messages = [message for _ in range(5) if (message := pubsub.get_message(timeout=0.2))]
    finally:
        pubsub.close()
    assert fake_redis.zrange(keys.ACTIVE_JOBS, 0, -1) == [NEIGHBOUR.encode()]
    assert [(m["channel"], m["data"]) for m in messages] == [
        (keys.ended_channel(JOB).encode(), records[0].state().encode())]
    assert records[0].state() in ("cancelled", "failed")


def test_transition_script_uses_only_the_names_it_is_given(fake_redis):
    # Names outside celery-animate's prefix: a script that built its own would miss them.
    fake_redis.hset("elsewhere:hash", "state", "rendering")
    fake_redis.zadd("elsewhere:active", {"the-job": 1, "other": 2})
    pubsub = fake_redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("elsewhere:ended")
    try:
        names = ["elsewhere:hash", "elsewhere:active", "elsewhere:ended", "elsewhere:ending"]
        changed = run_script(fake_redis, "transition", names,
                             ["the-job", "", 100, "state", "done", "note", "x"])
        message = next((m for _ in range(5) if (m := pubsub.get_message(timeout=0.2))), None)
    finally:
        pubsub.close()
    assert changed == 1
    assert fake_redis.hget("elsewhere:hash", "state") == b"done"
    assert fake_redis.hget("elsewhere:hash", "note") == b"x"
    assert 0 < fake_redis.ttl("elsewhere:hash") <= 100
    assert fake_redis.zrange("elsewhere:active", 0, -1) == [b"other"]
    assert fake_redis.zrange("elsewhere:ending", 0, -1) == [b"the-job"]
    assert message is not None and message["channel"] == b"elsewhere:ended" and message["data"] == b"done"
