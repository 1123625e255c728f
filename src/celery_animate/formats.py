"""Output formats: which one an output's name asks for, and what each allows.

The extension chooses: ``.gif`` is a GIF, ``.webm`` a VP9 WebM, ``.zip`` a
zip of one PNG per frame, ``.png`` no video at all but only the job's stills
(``run.png`` with ``stills=[0, 299]`` writes ``run-00000.png`` and
``run-00299.png``), and anything else (``.mp4`` above all) an H.264 MP4, as
it always was. Only H.264 MP4 is encoded in segments that are joined
without re-encoding; a GIF needs one palette from every frame, and the others
are written whole by one encoder.
"""

from __future__ import annotations

import math
import os
from pathlib import PurePosixPath

from celery_animate.errors import InvalidArgument

MP4, GIF, WEBM, PNG_ZIP, STILLS = "mp4", "gif", "webm", "png-zip", "png"
#: Outputs one job may write from one render, at most, and stills it may keep.
MAX_OUTPUTS, MAX_STILLS = 8, 100
_BY_SUFFIX = {".gif": GIF, ".webm": WEBM, ".zip": PNG_ZIP, ".png": STILLS}
#: Hundredths of a second a GIF frame may be shown, at least: browsers show shorter delays slower.
MIN_GIF_DELAY = 2


def format_of(output: str | os.PathLike[str]) -> str:
    """The format ``output`` (a path or a URL) asks for by its extension (case-insensitive)."""
    return _BY_SUFFIX.get(PurePosixPath(os.fspath(output)).suffix.lower(), MP4)


def segmentable(fmt: str) -> bool:
    """Whether a video of ``fmt`` may be encoded in segments joined afterwards."""
    return fmt == MP4


def check_stills_only(outputs: list[str], stills: list[int]) -> None:
    """Refuse (:class:`InvalidArgument`) a ``.png`` output that is not the job's only output, or
    that comes without ``stills`` to write."""
    if not any(format_of(output) == STILLS for output in outputs):
        return
    if len(outputs) > 1:
        raise InvalidArgument(f"{outputs[0] if format_of(outputs[0]) == STILLS else outputs[1]} "
                              "asks for stills only (.png): it must be the job's only output; "
                              "to keep stills beside videos, pass stills= with the videos alone")
    if not stills:
        raise InvalidArgument(f"{outputs[0]} asks for stills only (.png), but stills= names no "
                              "frame: pass stills=[0, 299], or a video's name (.mp4)")


def stills_frames(stills: list[int]) -> range:
    """The animation frames a job of stills only renders: from the first still to the last, by
    the largest step that reaches every one (``[0, 299]``: 2 frames; ``[0, 100, 299]``: 300)."""
    first, last = min(stills), max(stills)
    step = math.gcd(*(index - first for index in stills)) or 1
    return range(first, last + 1, step)


def gif_fps(fps: float) -> float:
    """The frame rate a GIF of ``fps`` is written at: GIF delays are whole hundredths of a second
    (at least :data:`MIN_GIF_DELAY`), so 30 fps becomes 100/3 = 33.33 fps and 24 fps 25 fps."""
    delay = max(MIN_GIF_DELAY, round(100 / fps))
    return 100 / delay


def still_name(output: str, frame_idx: int) -> str:
    """Where the still of animation frame ``frame_idx`` of a job whose (first) output is
    ``output`` goes: beside it, ``<name>-<frame, 5 digits>.png`` (``run.mp4`` gives
    ``run-00299.png``; a URL gives a key beside the video's)."""
    head, sep, last = output.rpartition("/")
    stem = PurePosixPath(last).stem if PurePosixPath(last).suffix else last
    return f"{head}{sep}{stem}-{frame_idx:05d}.png"
