"""Turning ``param_by_frame`` into validated ``(frame_idx, params)`` pairs and chunks.

Everything here streams: a generator of 100k frames is read one chunk at a
time, and only the set of seen indices is kept for the whole run.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from celery_animate.errors import FrameIndexError, InvalidArgument

#: The function next to an Animator class that the CLI and periodic renders take params from.
PARAMS_FUNCTION = "param_by_frame"


@dataclass
class IndexedFrameParams:
    """Params for one frame whose position in the video is ``frame_id``.

    Use it when ``param_by_frame`` yields frames out of order (for example a
    parallel data loader): ``frame_id`` overrides the position in the iterable.
    """

    frame_id: int
    params: Any


def check_n_frames(n_frames: int | None, name: str = "n_frames") -> None:
    """Raise :class:`InvalidArgument` unless ``n_frames`` is None or a positive int (numpy's too).

    ``name`` is what the message calls it (the CLI's ``--frames``).
    """
    if n_frames is not None and (isinstance(n_frames, bool) or not isinstance(n_frames, numbers.Integral)
                                 or n_frames < 1):
        raise InvalidArgument(f"{name} must be a positive int (a video needs at least one frame) or None, "
                              f"got {n_frames!r}")


def check_param_by_frame(param_by_frame: Any, n_frames: int | None) -> int | None:
    """Check what can be checked of ``param_by_frame`` and ``n_frames`` before reading any frame.

    Returns the number of frames the job will have when it is known now (``n_frames``, else
    ``len(param_by_frame)``), None for a generator without ``n_frames``. Raises
    :class:`InvalidArgument` for a bad ``n_frames``, for a ``param_by_frame`` that is not an
    ordered iterable of per-frame params (a str, a dict, a set, a number), and for a sized one that
    is empty or shorter than ``n_frames``; :class:`FrameIndexError` for a list or tuple whose
    indices are not ``0 .. n-1`` once each (it can be read twice: its indices are checked whole
    now, without looking at the params). A generator's indices and length are only known once
    read: see :class:`FrameIndexTracker`.
    """
    check_n_frames(n_frames)
    kind = type(param_by_frame).__name__
    if isinstance(param_by_frame, (str, bytes, bytearray, memoryview, Mapping, set, frozenset)):
        raise InvalidArgument(
            f"param_by_frame must be an ordered iterable with one entry per frame (a list, a tuple, "
            f"a generator), got a {kind}: wrap a single frame's params in a list, e.g. [params]")
    try:
        iter(param_by_frame)
    except TypeError:
        raise InvalidArgument(f"param_by_frame must be an iterable with one entry per frame (a list, "
                              f"a tuple, a generator), got a {kind}") from None
    length = known_length(param_by_frame)
    if length is not None:
        if length == 0:
            raise InvalidArgument(EMPTY_MESSAGE)
        if n_frames is not None and length < n_frames:
            raise InvalidArgument(short_message(n_frames, length))
    if isinstance(param_by_frame, Sequence):
        tracker = FrameIndexTracker()
        for _ in tracker.track(resolved_frames(param_by_frame, n_frames)):
            pass
        tracker.finish(n_frames)
    return n_frames if n_frames is not None else length


#: The error for a ``param_by_frame`` without a single frame.
EMPTY_MESSAGE = "param_by_frame is empty: give at least one frame's params"


def short_message(n_frames: int, count: int) -> str:
    """The error for a ``param_by_frame`` with fewer than ``n_frames`` entries."""
    return f"n_frames is {n_frames} but param_by_frame has only {count} frames"


def resolved_frames(param_by_frame: Iterable[Any], n_frames: int | None) -> Iterator[tuple[int, Any]]:
    """Yield ``(frame_idx, params)``, unwrapping :class:`IndexedFrameParams`.

    Raises :class:`FrameIndexError` on a repeated index (two ``frame_id`` s, or
    a ``frame_id`` equal to another frame's position) and on an index that is
    not a non-negative integer. Gaps are only known at the end: see
    :class:`FrameIndexTracker`.
    """
    for position, params in enumerate(itertools.islice(param_by_frame, n_frames)):
        if isinstance(params, IndexedFrameParams):
            frame_id = params.frame_id
            if isinstance(frame_id, bool) or not isinstance(frame_id, numbers.Integral) or frame_id < 0:
                raise FrameIndexError(
                    f"IndexedFrameParams.frame_id must be a non-negative int, got {frame_id!r} "
                    f"(item {position} of param_by_frame)"
                )
            yield int(frame_id), params.params
        else:
            yield position, params


class FrameIndexTracker:
    """Checks that indices seen so far are unique, and at the end that none is missing."""

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def add(self, frame_idx: int) -> None:
        if frame_idx in self._seen:
            raise FrameIndexError(
                f"frame index {frame_idx} appears twice in param_by_frame; each frame needs "
                "exactly one entry (check IndexedFrameParams.frame_id values and that they do "
                "not collide with the positions of plain entries)"
            )
        self._seen.add(frame_idx)

    def track(self, frames: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        """Pass ``(frame_idx, params)`` pairs through, checking each index on the way."""
        for frame_idx, params in frames:
            self.add(frame_idx)
            yield frame_idx, params

    def finish(self, n_frames: int | None = None) -> int:
        """Return the frame count; raise if the indices are not exactly ``0 .. count-1``.

        ``n_frames``, when given, is the count the caller asked for; fewer params is an error.
        """
        count = len(self._seen)
        if count == 0:
            raise InvalidArgument(EMPTY_MESSAGE)
        if n_frames is not None and count < n_frames:
            raise InvalidArgument(short_message(n_frames, count))
        top = max(self._seen)
        if top != count - 1:
            missing = sorted(set(range(top + 1)) - self._seen)
            raise FrameIndexError(
                f"frame indices must run from 0 to {count - 1} without gaps, but "
                f"{len(missing)} are missing: {describe_ranges(missing)}"
            )
        return count


def describe_ranges(indices: list[int], limit: int = 10) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``, cut after ``limit`` runs."""
    runs: list[str] = []
    for _, group in itertools.groupby(enumerate(indices), lambda pair: pair[1] - pair[0]):
        values = [v for _, v in group]
        runs.append(str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")
    text = ", ".join(runs[:limit])
    return text + (f", ... ({len(runs) - limit} more runs)" if len(runs) > limit else "")


def known_length(items: Iterable[Any]) -> int | None:
    """``len(items)`` when the iterable has one (lists do, generators do not)."""
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most ``size`` consecutive items, read lazily."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def choose_chunk_size(n_frames: int | None, workers: int, chunks_per_worker: int,
                      largest: int = 256) -> int:
    """Frames per render task, at most ``largest``.

    Aims at ``chunks_per_worker`` chunks for each worker (parallel_animate's
    ``preload_factor``): enough for a slow worker's share to be taken over,
    few enough that per-task overhead and per-chunk setup stay negligible.
    The cap keeps a long job's chunks short, so another job's chunks get a
    worker within one chunk's time, and what a chunk stores past the render
    window small.
    """
    if n_frames is None:
        return min(32, largest)
    target = max(1, workers) * max(1, chunks_per_worker)
    return max(1, min(largest, -(-n_frames // target)))
