"""Each frame store behind the one interface: Redis (fakeredis), a directory, memory, a
directory that spills into another."""

import errno
import os
import time
from dataclasses import replace

import numpy as np
import pvio
import pytest

from celery_animate import keys
from celery_animate.config import Settings
from celery_animate.encode.join import packets
from celery_animate.encode.lease import EncodeLease
from celery_animate.encode.segments import encode_one_segment, encode_segmented, fetch_segments
from celery_animate.errors import ConfigurationError, EncodeIncomplete, FrameStoreFull, InvalidArgument
from celery_animate.frames import pack_frame
from celery_animate.ids import new_job_id
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions
from celery_animate.stores import (
    DirectoryFrameStore,
    MemoryFrameStore,
    RedisFrameStore,
    SpillingFrameStore,
    base,
    open_frame_store,
)


class SmallDirectoryFrameStore(DirectoryFrameStore):
    """A directory store whose disk holds ``capacity`` files: a full disk without mounting one.
    Like a real one, it refuses to replace a file too (the new copy is written beside it first)."""

    def __init__(self, root, capacity: int):
        super().__init__(root, ttl=60)
        self.capacity = capacity

    def _write(self, job_id, path, payload):
        if sum(f.is_file() for f in self.root.rglob("*")) >= self.capacity:
            raise FrameStoreFull(errno.ENOSPC, f"the frame store {self.root} is full")
        super()._write(job_id, path, payload)


@pytest.fixture(params=["redis", "directory", "memory", "spilling"])
def store(request, fake_redis, tmp_path):
    if request.param == "redis":
        return RedisFrameStore(fake_redis, ttl=60)
    if request.param == "directory":
        return DirectoryFrameStore(tmp_path, ttl=60)
    if request.param == "spilling":  # room for two files, then the second folder
        return SpillingFrameStore(SmallDirectoryFrameStore(tmp_path / "fast", 2),
                                  DirectoryFrameStore(tmp_path / "spill", ttl=60))
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
    environ = {"CELERY_BROKER_URL": "redis://h/0", "CELERY_ANIMATE_FRAME_STORE": "file:///dev/shm/frames",
               "CELERY_ANIMATE_FRAME_SPILL": "file:///var/tmp/frames"}
    assert Settings.from_env({**environ, "CELERY_ANIMATE_FRAME_SPILL": ""}).frame_spill is None
    spilling = open_frame_store(Settings.from_env(environ))
    assert isinstance(spilling, SpillingFrameStore)
    assert (str(spilling.fast.root), str(spilling.spill.root)) == ("/dev/shm/frames", "/var/tmp/frames")
    with pytest.raises(ConfigurationError, match="only a file:/// frame store spills"):
        open_frame_store(replace(settings, frame_spill="file:///var/tmp/frames"))
    with pytest.raises(ConfigurationError, match="frame spill folder 'redis://h/1'"):
        open_frame_store(replace(settings, frame_store="file:///dev/shm/frames",
                                 frame_spill="redis://h/1"))


def test_frames_and_segments_spill_into_the_second_folder_and_leave_both(tmp_path):
    fast, spill = tmp_path / "fast", tmp_path / "spill"
    store = SpillingFrameStore(SmallDirectoryFrameStore(fast, 3), DirectoryFrameStore(spill, 60))
    job = new_job_id()
    for i in range(5):
        store.put(job, i, f"frame {i}".encode())
    store.put_segment(job, 0, b"segment 0")
    assert sorted(f.name for f in (fast / job).iterdir()) == [f"{i:09d}.frame" for i in range(3)]
    assert sorted(f.name for f in (spill / job).iterdir()) == [
        "00000.segment", "000000003.frame", "000000004.frame"]
    assert store.get_many(job, [4, 0, 5, 3]) == [b"frame 4", b"frame 0", None, b"frame 3"]
    assert store.missing(job, 7) == [5, 6] and store.has_all(job, 5)
    assert store.get_segment(job, 0) == b"segment 0" and store.get_segment(job, 1) is None
    store.delete(job, [0, 4])  # room again in the fast folder: the next frame goes there
    store.put(job, 5, b"frame 5")
    assert (fast / job / "000000005.frame").exists()
    assert store.missing(job, 6) == [0, 4]
    store.delete_segments(job, 1)
    store.delete_job(job, 6)
    assert list(fast.iterdir()) == [] and list(spill.iterdir()) == []


def test_a_segment_written_again_is_read_as_written_again_wherever_it_went(tmp_path):
    store = SpillingFrameStore(SmallDirectoryFrameStore(tmp_path / "fast", 2),
                               DirectoryFrameStore(tmp_path / "spill", 60))
    job = new_job_id()
    store.put_segment(job, 0, b"first encode")
    store.put(job, 1, b"frame")  # fast is full now
    store.put_segment(job, 0, b"second encode")  # encoded again: into spill
    assert store.get_segment(job, 0) == b"second encode"
    assert not list((tmp_path / "fast" / job).glob("*.segment"))


def test_a_spilling_store_is_full_when_its_second_folder_is(tmp_path):
    store = SpillingFrameStore(SmallDirectoryFrameStore(tmp_path / "fast", 1),
                               SmallDirectoryFrameStore(tmp_path / "spill", 1))
    job = new_job_id()
    store.put(job, 0, b"a")
    store.put(job, 1, b"b")
    with pytest.raises(FrameStoreFull, match=f"the frame store {tmp_path / 'spill'} is full"):
        store.put(job, 2, b"c")


def test_a_spilling_store_sweeps_both_folders(tmp_path):
    fast, spill = tmp_path / "fast", tmp_path / "spill"
    store = SpillingFrameStore(SmallDirectoryFrameStore(fast, 1), DirectoryFrameStore(spill, 60))
    old, new = new_job_id(), new_job_id()
    for job in (old, new):
        store.put(job, 0, b"x")
        store.put(job, 1, b"y")
    for folder in (fast / old, spill / old):
        os.utime(folder, (time.time() - 3600, time.time() - 3600))
    assert store.sweep() == [old]
    assert [f.name for f in fast.iterdir()] == [] and [f.name for f in spill.iterdir()] == [new]


def test_missing_and_has_all_across_a_thousand_frame_batch(store):
    job = new_job_id()
    for i in range(1002):
        if i != 1000:
            store.put(job, i, b"f")
    assert store.has_all(job, 1000) and store.has_all(job, 1002, start=1001)
    assert not store.has_all(job, 1002) and not store.has_all(job, 1001, start=999)
    assert store.missing(job, 1002) == [1000]


# -- encoded segments: the only thing encoders of a job share besides Redis ---------------------
def test_segments_are_put_read_back_replaced_and_deleted(store):
    job, other = new_job_id(), new_job_id()
    store.put_segment(job, 0, b"segment 0")
    store.put_segment(job, 2, b"segment 2")
    store.put_segment(other, 0, b"other")
    assert store.get_segment(job, 0) == b"segment 0" and store.get_segment(job, 1) is None
    store.put_segment(job, 0, b"encoded again")  # an encoder that took the segment over
    assert store.get_segment(job, 0) == b"encoded again"
    store.delete_segments(job, 3)
    assert [store.get_segment(job, k) for k in range(3)] == [None, None, None]
    assert store.get_segment(other, 0) == b"other"
    store.delete_segments(job, 3)  # what is gone stays gone


@pytest.mark.parametrize("bad", [-1, "0", 1.0, None])
def test_a_segment_number_must_be_one(store, bad):
    with pytest.raises(InvalidArgument):
        store.put_segment(new_job_id(), bad, b"x")
    with pytest.raises(InvalidArgument):
        store.get_segment(new_job_id(), bad)


def test_a_segment_over_the_bound_is_neither_stored_nor_read(store, monkeypatch):
    job = new_job_id()
    monkeypatch.setattr(base, "MAX_SEGMENT_BYTES", 10)
    with pytest.raises(EncodeIncomplete, match="more than the frame store keeps"):
        store.put_segment(job, 0, b"x" * 11)
    assert store.get_segment(job, 0) is None
    store.put_segment(job, 0, b"x" * 10)
    # What comes back is a stranger's word: a value larger than any encoder stores is refused.
    monkeypatch.setattr(base, "MAX_SEGMENT_BYTES", 5)
    with pytest.raises(EncodeIncomplete, match=f"segment 0 of job {job} is 10 bytes"):
        store.get_segment(job, 0)


def test_redis_segments_expire_like_frames(fake_redis):
    store = RedisFrameStore(fake_redis, ttl=60)
    job = new_job_id()
    store.put_segment(job, 4, b"x")
    assert 0 < fake_redis.ttl(keys.segment_blob(job, 4)) <= 60
    assert keys.segment_blob(job, 4) == f"celery_animate:segment:{job}:4"


def test_memory_segments_expire():
    now = [0.0]
    store = MemoryFrameStore(ttl=10, clock=lambda: now[0])
    job = new_job_id()
    store.put_segment(job, 0, b"xyz")
    assert store.segment_bytes() == 3
    now[0] = 11
    assert store.get_segment(job, 0) is None and store.segment_bytes() == 0


def test_directory_segments_live_in_the_job_folder_and_go_with_it(tmp_path):
    store = DirectoryFrameStore(tmp_path, ttl=100)
    job = new_job_id()
    store.put_segment(job, 3, b"seg")
    assert [p.name for p in (tmp_path / job).iterdir()] == ["00003.segment"]
    past = time.time() - 1000
    os.utime(tmp_path / job, (past, past))
    assert store.sweep() == [job] and store.get_segment(job, 3) is None


def test_a_planted_link_is_not_read_as_a_segment(tmp_path):
    store = DirectoryFrameStore(tmp_path / "scratch", ttl=100)
    job = new_job_id()
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    (tmp_path / "scratch" / job).mkdir(parents=True)
    (tmp_path / "scratch" / job / "00000.segment").symlink_to(secret)
    with pytest.raises(OSError):
        store.get_segment(job, 0)


def test_purge_deletes_the_stored_segments_of_an_ended_job(store, fake_redis):
    record = JobRecord(fake_redis, new_job_id())
    spec = JobSpec("m:C", b"\x80", "/nonexistent/o.mp4", 40, 4, RenderOptions(fps=1), 10)
    lifecycle.create(record, spec)
    for k in range(spec.n_segments):
        store.put_segment(record.job_id, k, b"segment")
    lifecycle.end_job(record, lifecycle.CANCEL, lifecycle.Cleaner(store, Settings()))
    assert [store.get_segment(record.job_id, k) for k in range(spec.n_segments)] == [None] * 4


def test_segments_read_back_are_checked_before_they_are_joined(tmp_path):
    store = MemoryFrameStore()
    job = new_job_id()
    spec = JobSpec("m:C", b"\x80", "/o.mp4", 16, 2, RenderOptions(fps=10), 8)
    for k in range(2):
        path = tmp_path / f"enc{k}.mp4"
        pvio.write_frames_to_video(str(path), [np.full((48, 64, 3), 40 * k, np.uint8)] * 8, 10,
                                   quiet=True)
        store.put_segment(job, k, path.read_bytes())
    (tmp_path / "ok").mkdir()
    fetched, listed = fetch_segments(job, spec, store, tmp_path / "ok", ".mp4")
    assert [len(packets(p).pts) for p in fetched] == [len(p.pts) for p in listed] == [8, 8]

    def refused(match: str) -> None:
        where = tmp_path / new_job_id()
        where.mkdir()
        with pytest.raises(EncodeIncomplete, match=match):
            fetch_segments(job, spec, store, where, ".mp4")

    good = store.get_segment(job, 1)
    store.put_segment(job, 1, b"\x00" * 1000)  # a forged or corrupt value
    refused("segment 1 of job .* is not a readable video")
    store.put_segment(job, 1, store.get_segment(job, 0)[:len(good) // 2])  # cut short
    refused("segment 1 of job .* is not a readable video|segment 1 .* has [0-7] frames, not 8")
    longer = tmp_path / "longer.mp4"
    pvio.write_frames_to_video(str(longer), [np.zeros((48, 64, 3), np.uint8)] * 9, 10, quiet=True)
    store.put_segment(job, 1, longer.read_bytes())
    refused("segment 1 of job .* has 9 frames, not 8")
    store.delete_segments(job, 2)
    refused("segment 0 of job .* is not in the frame store")


def test_segments_go_through_the_store_and_nothing_but_the_video_lies_beside_it(fake_redis, tmp_path):
    # The segment encoder and the joiner in one process, on the one store they share.
    out = tmp_path / "out" / "video.mp4"
    out.parent.mkdir()
    record = JobRecord(fake_redis, new_job_id())
    spec = JobSpec("m:C", b"\x80", str(out), 24, 3, RenderOptions(fps=10), 8)
    lifecycle.create(record, spec)
    store = MemoryFrameStore()
    for i in range(24):
        store.put(record.job_id, i, pack_frame(np.full((48, 64, 3), 10 * i, np.uint8)))
    assert encode_one_segment(record, spec, Settings(), store, 1, when_rendered=True)
    assert record.finished_segments(3) == [False, True, False]
    assert store.get_segment(record.job_id, 1) and store.missing(record.job_id, 24) == list(range(8, 16))
    assert list(out.parent.iterdir()) == []
    lease = EncodeLease(record)
    assert lease.acquire()
    try:
        assert encode_segmented(record, spec, Settings(), store, lease)["frames"] == 24
    finally:
        lease.release()
    assert len(packets(out).pts) == 24 and list(out.parent.iterdir()) == [out]
    assert record.state() == "done" and store.segment_bytes() == 0 and len(store) == 0


def test_directory_frames_taken_back_after_the_end_leave_no_folder(tmp_path):
    """A render task that stored frames after its job's purge deletes them again: the folder
    they made goes with them (a folder that still holds something stays)."""
    store = DirectoryFrameStore(tmp_path, ttl=100)
    job_id = new_job_id()
    store.put(job_id, 0, b"a")
    store.put(job_id, 1, b"b")
    store.delete(job_id, [0])
    assert sorted(p.name for p in (tmp_path / job_id).iterdir()) == ["000000001.frame"]
    store.delete(job_id, [1])
    assert list(tmp_path.iterdir()) == []
    store.put(job_id, 2, b"c")  # a later frame makes it again
    assert store.get_many(job_id, [2]) == [b"c"]
