"""Limits on what a stranger can make a worker allocate or recurse into."""

import msgpack
import numpy as np
import pytest
import zstandard

from celery_animate import frames, wire
from celery_animate.errors import FrameTooLarge, InvalidArgument, InvalidFrame
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions


def nested(depth, make=tuple):
    value = 1
    for _ in range(depth):
        value = make([value])
    return value


@pytest.mark.parametrize("make", [tuple, list, lambda v: {"k": v[0]}])
def test_packing_refuses_deep_nesting_by_name(make):
    with pytest.raises(InvalidArgument, match="params of frame 3 nest more than 32 levels"):
        wire.check_packable(nested(250, make), "params of frame 3")
    wire.check_packable(nested(32, make), "params of frame 3")


def test_unpacking_refuses_deep_tuples_without_recursing():
    payload = msgpack.packb(1)
    for _ in range(5000):  # would overflow the C stack if each level recursed
        payload = msgpack.packb(msgpack.ExtType(2, payload))
    with pytest.raises(InvalidArgument, match="nests tuples deeper"):
        wire.unpackb(payload)


def test_unpacking_refuses_deep_lists_and_garbage():
    with pytest.raises(InvalidArgument):
        wire.unpackb(b"\x91" * 500 + b"\x90")
    with pytest.raises(InvalidArgument):
        wire.unpackb(b"\xc1")
    evil_array = msgpack.ExtType(1, msgpack.packb(["|O", [1]]) + b"\x00" * 8)
    with pytest.raises(InvalidArgument, match="object dtype"):
        wire.unpackb(msgpack.packb(evil_array))


def test_zstd_bomb_is_refused_before_decompressing():
    bomb = zstandard.ZstdCompressor(level=1).compress(b"\x00" * 50_000_000)
    assert len(bomb) < 10_000
    payload = msgpack.packb([16, 16, "zstd", bomb])  # claims 16x16 pixels
    with pytest.raises(InvalidFrame, match="declares 50000000 bytes of pixels, not 768"):
        frames.unpack_frame(payload)


def test_stated_frame_size_is_bounded():
    payload = msgpack.packb([100_000, 100_000, "zstd", b""])
    with pytest.raises(FrameTooLarge, match="100000x100000 pixels"):
        frames.unpack_frame(payload, max_pixels=10**8)
    for junk in (b"", b"\x94\xc0\xc0\xc0\xc0", msgpack.packb([1, 1, "zstd", b"not zstd"])):
        with pytest.raises(InvalidFrame):
            frames.unpack_frame(junk)


def test_frames_round_trip_within_limits():
    rgb = np.random.default_rng(1).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    np.testing.assert_array_equal(frames.unpack_frame(frames.pack_frame(rgb), max_pixels=48 * 32), rgb)


@pytest.mark.parametrize("dpi", [0, -5, 10**6, "huge", True])
def test_dpi_is_bounded_on_the_client(dpi):
    with pytest.raises(InvalidArgument, match="dpi"):
        RenderOptions(fps=1, savefig_params={"dpi": dpi})


def test_spec_from_the_wire_is_checked_field_by_field():
    good = JobSpec("m:C", b"\x80", "out.mp4", 4, 2, RenderOptions(fps=1))
    assert JobSpec.unpack(good.pack()) == good
    fields = wire.unpackb(good.pack())
    for change, message in [
        ({"frame_store": "file:///victim"}, "unknown fields"),
        ({"n_chunks": 9}, "9 chunks for 4 frames"),
        ({"n_frames": -1}, "at least 1"),
        ({"output": 5}, "output must be a non-empty str"),
        ({"options": {"fps": 1, "video_extra_ffmpeg_params": ["-i", "/etc/passwd"]}}, "'-i'"),
        ({"options": {"fps": 1, "evil": 1}}, "not RenderOptions"),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            JobSpec.unpack(wire.packb({**fields, **change}))
