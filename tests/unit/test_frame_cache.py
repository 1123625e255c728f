"""The frame cache's parts: backends bounded in bytes, sealed entries, and keys that change with
exactly what a frame depends on."""

import os

import matplotlib
import numpy as np
import pytest
from animators import BarCode

from celery_animate import wire
from celery_animate.cache import DirectoryCache, FrameCache, MemoryCache, RedisCache, namespace_of
from celery_animate.cache.sealed import TAG_BYTES
from celery_animate.errors import InvalidArgument
from celery_animate.options import RenderOptions
from celery_animate.render import cache_key
from celery_animate.render.cache_key import FrameKeys, rc_digest
from celery_animate.render.loading import pack_attrs

NAMESPACE = namespace_of("s")


def name(k: int, kind: str = "frame") -> str:
    return f"{kind}-{k:064x}"


@pytest.fixture(params=["memory", "directory", "redis"])
def backend(request, tmp_path, fake_redis):
    def make(max_bytes: int):
        if request.param == "memory":
            return MemoryCache(NAMESPACE, max_bytes)
        if request.param == "directory":
            return DirectoryCache(tmp_path, NAMESPACE, max_bytes, 3600)
        return RedisCache(fake_redis, NAMESPACE, max_bytes, 3600)
    return make


def test_the_least_recently_used_entries_go_first_and_the_bound_holds(backend):
    cache = backend(1000)
    for k in range(4):
        cache.put(name(k), bytes([k]) * 200)
    assert cache.get_many([name(0)]) == [b"\0" * 200]  # 0 is now the most recently used
    for k in range(4, 8):
        cache.put(name(k), bytes([k]) * 200)
        if isinstance(cache, DirectoryCache):
            cache.evict()  # it counts the directory now and then: count at once here
    assert cache.size_bytes() <= 1000
    found = cache.get_many([name(k) for k in range(8)])
    assert found[1] is None and found[2] is None  # the oldest unused went first
    assert found[7] == b"\7" * 200
    assert cache.clear() >= 1 and cache.get_many([name(7)]) == [None]


def test_names_that_could_leave_the_cache_are_refused(backend):
    cache = backend(1000)
    for bad in ["../x", "frame-" + "g" * 64, "frame-" + "0" * 63, "other-" + "0" * 64, 7]:
        with pytest.raises(InvalidArgument):
            cache.put(bad, b"x")
        with pytest.raises(InvalidArgument):
            cache.get_many([bad])


def test_a_link_planted_in_the_cache_folder_is_not_followed(tmp_path):
    cache = DirectoryCache(tmp_path, NAMESPACE, 10_000, 3600)
    secret = tmp_path / "elsewhere"
    secret.write_bytes(b"private")
    cache.folder.mkdir(parents=True)
    (cache.folder / name(1)).symlink_to(secret)
    assert cache.get_many([name(1)]) == [None]
    cache.clear()
    assert secret.read_bytes() == b"private"


def test_entries_unused_past_their_days_expire_from_a_folder(tmp_path):
    cache = DirectoryCache(tmp_path, NAMESPACE, 10_000, ttl=60)
    cache.put(name(1), b"old")
    old = cache.folder / name(1)
    os.utime(old, (0, 0))
    cache.put(name(2), b"new")
    cache.evict()
    assert cache.get_many([name(1), name(2)]) == [None, b"new"]


def test_a_forged_or_foreign_entry_is_a_miss():
    backend = MemoryCache(NAMESPACE, 10_000)
    cache = FrameCache(backend, "s")
    a, b = cache.name("frame", b"a"), cache.name("frame", b"b")
    cache.put(a, b"pixels of a")
    cache.put(b, b"pixels of b")
    assert cache.get_many([a, b]) == [b"pixels of a", b"pixels of b"]
    backend.entries[b] = backend.entries[a]  # a valid entry under another name
    assert cache.get(b) is None
    backend.entries[a] = backend.entries[a][:TAG_BYTES] + b"pixels of x"  # content swapped
    assert cache.get(a) is None
    backend.entries[a] = b"short"
    assert cache.get(a) is None
    other = FrameCache(backend, "another secret")  # sealed with another secret
    other.put(a, b"theirs")
    assert cache.get(a) is None


def test_names_and_namespaces_depend_on_the_secret():
    one, two = FrameCache(MemoryCache(NAMESPACE, 1), "one"), FrameCache(MemoryCache(NAMESPACE, 1), "two")
    assert one.name("frame", b"x") != two.name("frame", b"x")
    assert one.name("frame", b"x") == one.name("frame", b"x")
    assert namespace_of("one") != namespace_of("two")


def test_an_entry_larger_than_an_eighth_of_the_cache_is_not_kept():
    cache = FrameCache(MemoryCache(NAMESPACE, 800), "s")
    cache.put(cache.name("video", b"v"), b"x" * 101)
    assert cache.get(cache.name("video", b"v")) is None


def keys_of(animator=None, options=None, rc=None) -> FrameKeys:
    animator = animator or BarCode(tag="k")
    cache = FrameCache(MemoryCache(NAMESPACE, 1), "s")
    return FrameKeys.build(cache, animator, "animators:BarCode", pack_attrs(animator),
                           options or RenderOptions(fps=10), rc or rc_digest())


PARAMS = {"y": np.arange(3.0)}


def test_each_part_of_the_key_changes_it_and_nothing_else_does(monkeypatch):
    base = keys_of().frame(3, PARAMS)
    assert keys_of().frame(3, PARAMS) == base
    assert keys_of().frame(4, PARAMS) != base  # the frame's index
    assert keys_of().frame(3, {"y": np.arange(3.0) + 1}) != base  # its params
    assert keys_of(BarCode(tag="other")).frame(3, PARAMS) != base  # an attribute
    assert keys_of(options=RenderOptions(fps=10, savefig_params={"dpi": 50})).frame(3, PARAMS) != base
    with matplotlib.rc_context({"lines.linewidth": 7}):
        assert keys_of(rc=rc_digest()).frame(3, PARAMS) != base  # an rcParam
    before = rc_digest()
    with matplotlib.rc_context({"interactive": not matplotlib.rcParams["interactive"]}):
        assert rc_digest() == before  # a caller's interactive mode is not a worker's pixels
    monkeypatch.setattr(cache_key.matplotlib, "__version__", "99.0")
    assert keys_of().frame(3, PARAMS) != base  # matplotlib's version
    monkeypatch.undo()
    monkeypatch.setattr(cache_key, "FRAME_FORMAT_VERSION", 99)
    assert keys_of().frame(3, PARAMS) != base  # the frame format
    monkeypatch.undo()
    # What cannot change pixels is not in the key: blitting, the fps, the video's quality.
    assert keys_of(options=RenderOptions(fps=30, blit=False, video_quality=40)).frame(3, PARAMS) == base


def test_the_key_sees_the_code_as_loaded_not_as_it_lies_on_disk(monkeypatch):
    base = keys_of().frame(0, PARAMS)
    original = BarCode.update

    def update(self, frame_idx, params):  # another update(): another key
        original(self, frame_idx, params)

    monkeypatch.setattr(BarCode, "update", update)
    monkeypatch.setattr(update, "__module__", "animators")
    assert keys_of().frame(0, PARAMS) != base
    monkeypatch.undo()
    assert keys_of().frame(0, PARAMS) == base


def test_cache_key_adds_to_the_key_and_must_be_packable():
    class Keyed(BarCode):
        version = 1

        def cache_key(self):
            return ["data.csv", self.version]

    Keyed.__module__ = "animators"
    first = keys_of(Keyed()).frame(0, PARAMS)
    animator = Keyed()
    animator.version = 2
    assert keys_of(animator).frame(0, PARAMS) != first

    class Unpackable(BarCode):
        def cache_key(self):
            return object()

    with pytest.raises(InvalidArgument, match="cache_key"):
        keys_of(Unpackable())


def test_params_read_back_from_the_wire_key_like_the_callers():
    keys = keys_of()
    sent = {"y": np.linspace(0, 1, 5), "t": (1, 2)}
    assert keys.frame(0, wire.unpackb(wire.packb(sent))) == keys.frame(
        0, wire.unpackb(wire.packb(wire.unpackb(wire.packb(sent)))))


def test_a_kept_video_note_counts_only_when_these_workers_signed_it_for_this_job(fake_redis):
    from celery_animate.ids import new_job_id
    from celery_animate.job import kept_video
    from celery_animate.job.kept_video import KeptNote
    from celery_animate.job.record import JobRecord

    cache = FrameCache(MemoryCache(NAMESPACE, 2**20), "s")
    one, two = (JobRecord(fake_redis, new_job_id()) for _ in range(2))
    for record in (one, two):
        fake_redis.hset(record.key, "state", "rendering")
    gone = JobRecord(fake_redis, new_job_id())
    assert kept_video.claim_lookup(one) and not kept_video.claim_lookup(one)
    assert not kept_video.claim_lookup(gone) and not fake_redis.exists(gone.key)  # not recreated
    assert kept_video.read_note(one, cache) is None  # claimed, not noted yet
    outcome = KeptNote(cache.name("video", b"v"), found=True)
    kept_video.note(one, cache, outcome)
    assert kept_video.read_note(one, cache) == outcome
    assert kept_video.read_note(one, FrameCache(MemoryCache(NAMESPACE, 1), "other")) is None
    note = fake_redis.hget(one.key, kept_video.NOTE_FIELD)
    # What a stranger may write: this job's note in another job, a hit made of a miss, another
    # entry's name under the same signature, a note of his own.
    fake_redis.hset(two.key, kept_video.NOTE_FIELD, note)
    assert kept_video.read_note(two, cache) is None
    for forged in (note.replace(b"hit ", b"miss "),
                   note.replace(outcome.name.encode(), b"video-" + b"0" * 64),
                   b"hit video-" + b"1" * 64 + b" " + b"2" * 64, b"hit", b""):
        fake_redis.hset(one.key, kept_video.NOTE_FIELD, forged)
        assert kept_video.read_note(one, cache) is None, forged


def test_a_kept_video_entry_that_is_not_one_is_refused():
    from celery_animate.errors import EncodeIncomplete
    from celery_animate.job.kept_video import pack_entry, unpack_entry

    fields = {"n_frames": 3, "width": 64, "height": 48, "fps": 10.0, "encoder": "libx264"}
    assert unpack_entry(pack_entry({**fields, "extra": 1}, b"mp4")) == (fields, b"mp4")
    for bad in (wire.packb([{**fields, "n_frames": True}, b"x"]),
                wire.packb([{**fields, "width": "64"}, b"x"]), wire.packb([{"n_frames": 3}, b"x"]),
                wire.packb([fields, "x"]), wire.packb([fields]),
                wire.packb("x"), b"\xc1"):
        with pytest.raises(EncodeIncomplete):
            unpack_entry(bad)
