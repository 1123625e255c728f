"""Each frame store behind the one interface: Redis (fakeredis), a directory, memory."""

import os
import time
from dataclasses import replace

import pytest

from celery_animate.config import Settings
from celery_animate.errors import ConfigurationError, InvalidArgument
from celery_animate.ids import new_job_id
from celery_animate.stores import (
    DirectoryFrameStore,
    MemoryFrameStore,
    RedisFrameStore,
    open_frame_store,
)


@pytest.fixture(params=["redis", "directory", "memory"])
def store(request, fake_redis, tmp_path):
    if request.param == "redis":
        return RedisFrameStore(fake_redis, ttl=60)
    if request.param == "directory":
        return DirectoryFrameStore(tmp_path, ttl=60)
    return MemoryFrameStore(ttl=60)


def test_put_get_missing_delete(store):
    job, other = new_job_id(), new_job_id()
    for i in (0, 1, 3):
        store.put(job, i, f"frame {i}".encode())
    store.put(other, 0, b"other")
    store.put(job, 1, b"frame 1")  # a re-delivered chunk writes the same bytes again
    assert store.get_many(job, [3, 0, 2]) == [b"frame 3", b"frame 0", None]
    assert store.get_many(job, []) == []
    assert store.missing(job, 5) == [2, 4]
    assert store.missing(job, 5, start=2) == [2, 4]
    assert store.missing(job, 2) == [] and store.missing(job, 4, start=3) == []  # all there
    assert store.has_all(job, 2) and store.has_all(job, 4, start=3)
    assert not store.has_all(job, 4) and not store.has_all(job, 5, start=3)
    store.delete(job, [0, 2])
    assert store.missing(job, 4) == [0, 2]
    store.delete_job(job, 4)
    assert store.missing(job, 4) == [0, 1, 2, 3]
    assert store.get_many(other, [0]) == [b"other"]


def test_redis_frames_expire(fake_redis):
    store = RedisFrameStore(fake_redis, ttl=60)
    job = new_job_id()
    store.put(job, 0, b"x")
    assert 0 < fake_redis.ttl(RedisFrameStore.key(job, 0)) <= 60


def test_memory_frames_expire():
    now = [0.0]
    store = MemoryFrameStore(ttl=10, clock=lambda: now[0])
    job = new_job_id()
    store.put(job, 0, b"x")
    now[0] = 11
    assert store.get_many(job, [0]) == [None]


def test_directory_sweep_removes_only_old_job_folders(tmp_path):
    store = DirectoryFrameStore(tmp_path, ttl=100)
    old_job, new_job = new_job_id(), new_job_id()
    store.put(old_job, 0, b"x")
    store.put(new_job, 0, b"x")
    unrelated = tmp_path / "photos"
    unrelated.mkdir()
    (unrelated / "keep.jpg").write_bytes(b"precious")
    victim = tmp_path.parent / f"victim-{new_job_id()}"
    victim.mkdir()
    link_name = new_job_id()
    (tmp_path / link_name).symlink_to(victim)
    past = time.time() - 1000
    for path in (tmp_path / old_job, unrelated, tmp_path / link_name):
        os.utime(path, (past, past), follow_symlinks=False)
    assert store.sweep() == [old_job]
    assert (unrelated / "keep.jpg").read_bytes() == b"precious"
    assert victim.is_dir() and (tmp_path / new_job).is_dir()


@pytest.mark.parametrize("bad", ["../victim", "/etc", "..", "x" * 32])
def test_directory_store_refuses_ids_that_are_not_job_ids(tmp_path, bad):
    store = DirectoryFrameStore(tmp_path / "scratch", ttl=100)
    for call in (lambda: store.put(bad, 0, b"x"), lambda: store.delete_job(bad, 1),
                 lambda: store.get_many(bad, [0])):
        with pytest.raises(InvalidArgument):
            call()
    assert not (tmp_path / "scratch").exists()


def test_open_frame_store():
    settings = Settings(broker_url="redis://h/0", result_backend="redis://h/0")
    assert isinstance(open_frame_store(settings), RedisFrameStore)
    assert isinstance(open_frame_store(replace(settings, frame_store="file:///tmp/scratch")),
                      DirectoryFrameStore)
    with pytest.raises(ConfigurationError, match="unknown frame store"):
        open_frame_store(replace(settings, frame_store="s3://bucket"))
    with pytest.raises(ConfigurationError, match="file:///absolute/path"):
        open_frame_store(replace(settings, frame_store="file://host/dir"))


def test_missing_and_has_all_across_a_thousand_frame_batch(store):
    job = new_job_id()
    for i in range(1002):
        if i != 1000:
            store.put(job, i, b"f")
    assert store.has_all(job, 1000) and store.has_all(job, 1002, start=1001)
    assert not store.has_all(job, 1002) and not store.has_all(job, 1001, start=999)
    assert store.missing(job, 1002) == [1000]
