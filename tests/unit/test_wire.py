import numpy as np
import pytest

from celery_animate import UnpackableError, frames, wire
from celery_animate.render.grab import grab_rgb


def test_numpy_tuples_and_nesting_round_trip():
    value = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "t": (1, (2.5, "x")),
             "n": np.int64(7), "b": b"\x00\x01", "none": None, "l": [np.uint8(3), True]}
    back = wire.unpackb(wire.packb(value))
    np.testing.assert_array_equal(back["a"], value["a"])
    assert back["a"].dtype == np.float32 and back["a"].flags.writeable
    assert back["t"] == (1, (2.5, "x"))
    assert back["n"] == 7 and back["b"] == b"\x00\x01" and back["none"] is None
    assert back["l"] == [3, True]


def test_non_contiguous_and_big_endian_arrays():
    a = np.arange(20, dtype=">i4").reshape(4, 5)[:, ::2]
    back = wire.unpackb(wire.packb(a))
    np.testing.assert_array_equal(back, a)


@pytest.mark.parametrize("bad, where", [
    ({"ok": 1, "bad": {1, 2}}, "value['bad']"),
    ([1, [2, object()]], "value[1][1]"),
    (np.array([object()]), "value"),
])
def test_unpackable_values_are_named(bad, where):
    with pytest.raises(UnpackableError) as info:
        wire.check_packable(bad, "params of frame 3")
    assert str(info.value).startswith(f"params of frame 3: {where} is a ")


def test_frame_pack_round_trip_and_padding():
    rgb = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(frames.unpack_frame(frames.pack_frame(rgb)), rgb)
    assert frames.padded_shape(600, 600) == (608, 608)
    assert frames.padded_shape(480, 640) == (480, 640)


def test_grabbed_frames_are_padded_with_edge_pixels_like_numpy():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.01, 1.53), dpi=100)
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [0, 1], lw=5)
    got = grab_rgb(fig)
    rgba = np.asarray(fig.canvas.buffer_rgba())
    height, width = rgba.shape[:2]
    want = np.pad(rgba[:, :, :3], ((0, got.shape[0] - height), (0, got.shape[1] - width), (0, 0)),
                  mode="edge")
    assert got.shape == (160, 304, 3) and np.array_equal(got, want)
