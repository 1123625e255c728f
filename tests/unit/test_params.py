import itertools

import pytest

from celery_animate import IndexedFrameParams
from celery_animate.params import (
    FrameIndexError,
    FrameIndexTracker,
    check_n_frames,
    choose_chunk_size,
    chunked,
    resolved_frames,
)


def finish(params, n_frames=None):
    tracker = FrameIndexTracker()
    pairs = list(tracker.track(resolved_frames(params, n_frames)))
    return pairs, tracker.finish(n_frames)


def test_indexed_params_override_positions():
    params = [IndexedFrameParams(2, "c"), IndexedFrameParams(0, "a"), IndexedFrameParams(1, "b")]
    pairs, count = finish(params)
    assert pairs == [(2, "c"), (0, "a"), (1, "b")] and count == 3


def test_n_frames_truncates_like_parallel_animate():
    pairs, count = finish(iter(range(10)), 4)
    assert [p for _, p in pairs] == [0, 1, 2, 3] and count == 4


@pytest.mark.parametrize("params, message", [
    ([IndexedFrameParams(0, 1), IndexedFrameParams(0, 2)], "frame index 0 appears twice"),
    (["a", IndexedFrameParams(0, "b")], "frame index 0 appears twice"),
    ([IndexedFrameParams(0, 1), IndexedFrameParams(3, 2), IndexedFrameParams(4, 2)],
     "2 are missing: 1-2"),
    ([IndexedFrameParams(-1, 0)], "non-negative int"),
])
def test_bad_indices(params, message):
    with pytest.raises(FrameIndexError, match=message):
        finish(params)


def test_empty_and_short_params():
    with pytest.raises(ValueError, match="empty"):
        finish([])
    with pytest.raises(ValueError, match="n_frames is 5 but param_by_frame has only 2"):
        finish([1, 2], 5)
    with pytest.raises(ValueError, match="positive int"):
        check_n_frames(-1)


def test_chunking_streams_a_generator():
    consumed = []

    def params():
        for i in itertools.count():
            consumed.append(i)
            yield i

    chunks = chunked(resolved_frames(params(), 100_000), 10)
    first = next(chunks)
    assert [i for i, _ in first] == list(range(10))
    assert len(consumed) <= 11


def test_chunk_size():
    assert choose_chunk_size(600, 2, 8) == 38
    assert choose_chunk_size(5, 4, 8) == 1
    assert choose_chunk_size(10**6, 2, 8) == 256
    assert choose_chunk_size(None, 2, 8) == 32
    assert choose_chunk_size(10**6, 2, 8, largest=30) == 30
    assert choose_chunk_size(None, 2, 8, largest=16) == 16


def test_numpy_scalars_are_taken_where_parallel_animate_takes_numbers():
    import numpy as np

    from celery_animate.client.dispatch import resolve_num_workers
    from celery_animate.options import RenderOptions

    params = [IndexedFrameParams(np.int64(i), i) for i in np.random.default_rng(3).permutation(5)]
    pairs, count = finish(params, np.int32(5))
    assert count == 5 and all(type(i) is int for i, _ in pairs)
    options = RenderOptions(fps=np.float32(24), video_quality=np.int64(20),
                            savefig_params={"dpi": np.int16(80)}, plotting_log_interval=np.uint8(5))
    assert options.fps == 24 and type(options.video_quality) is int
    assert resolve_num_workers(np.int64(3)) == 3
    assert choose_chunk_size(np.int64(600), np.int64(2), np.int64(8)) == 38
