"""Joining encoded segments into one video without re-encoding, and proving the join is whole.

Segments are joined with ffmpeg's concat demuxer and stream copy: packets
are copied, never decoded, so joining costs seconds, not an encode. That is
only correct when every segment is an H.264 stream with the same
parameters (checked: the codec's extradata, i.e. SPS and PPS, must be the
same in every segment) starting with a keyframe (every encode does, and
libx264's GOPs are closed by default). The result is then checked packet
by packet: the frame count, and presentation times that step by exactly
one frame from the first to the last (a gap or an overlap at a seam would
show up as a jump).

The ffmpeg used is the encode worker's own (imageio-ffmpeg's, which
``IMAGEIO_FFMPEG_EXE`` on the worker can point elsewhere), never one named
in a message.
"""

from __future__ import annotations

import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from celery_animate.errors import EncodeIncomplete

#: Seconds a join or a packet listing may take before it is given up as hung.
FFMPEG_TIMEOUT = 600


def ffmpeg_exe() -> str:
    """The ffmpeg this worker encodes with."""
    import imageio_ffmpeg  # comes with pvio; only processes that encode need it

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(args: list[str], doing: str) -> str:
    try:
        done = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *args],
                              capture_output=True, text=True, timeout=FFMPEG_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise EncodeIncomplete(f"ffmpeg took more than {FFMPEG_TIMEOUT} s {doing}") from exc
    if done.returncode != 0:
        raise EncodeIncomplete(f"ffmpeg failed {doing}: {done.stderr.strip()[-500:]}")
    return done.stdout


@dataclass
class Packets:
    """What a video's packets say about it, read without decoding (ffmpeg's framemd5 muxer)."""

    extradata: str
    timebase: str
    #: ``(width, height)`` in pixels.
    size: tuple[int, int]
    pts: list[int]
    durations: list[int]


def packets(path: Path) -> Packets:
    """The video stream's codec extradata hash, time base, and each packet's pts and duration.

    One ffmpeg run of a few milliseconds that decodes nothing (counting frames
    through imageio, as ``pvio.check_num_frames`` does, starts two and took
    50-60 ms for any length). Raises :class:`EncodeIncomplete` when ffmpeg
    cannot read the file (no ``moov`` atom: the writer died before its trailer).
    """
    listing = _run(["-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framemd5", "-"],
                   f"reading the packets of {path.name}")
    extradata, timebase, size, pts, durations = "", "", (0, 0), [], []
    for line in listing.splitlines():
        if line.startswith("#dimensions 0:"):
            width, _, height = line.split(":", 1)[1].strip().partition("x")
            size = (int(width), int(height))
        elif line.startswith("#extradata 0"):
            extradata = line.rsplit(",", 1)[-1].strip()
        elif line.startswith("#tb 0:"):
            timebase = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            fields = [field.strip() for field in line.split(",")]
            pts.append(int(fields[2]))
            durations.append(int(fields[3]))
    return Packets(extradata, timebase, size, pts, durations)


def _concat_list(segments: list[Path]) -> str:
    # The concat demuxer's own quoting: a quote inside a quoted path is written '\''.
    return "".join("file '{}'\n".format(str(path).replace("'", "'\\''")) for path in segments)


def join_segments(segments: list[Path], output: Path, extra_output_args: tuple[str, ...] = (),
                  listed: list[Packets] | None = None) -> Packets:
    """Write ``segments``, in order, into ``output`` by stream copy, then check it is whole.
    ``listed`` are the segments' :func:`packets`, when the caller read them already.

    Returns the joined video's packets. Raises :class:`EncodeIncomplete`
    when the segments differ in their codec parameters, when ffmpeg fails,
    and when the joined video does not have the frames of all segments with
    presentation times one frame apart.
    """
    if listed is None or len(listed) != len(segments):
        with ThreadPoolExecutor(max_workers=4) as pool:  # each listing mostly waits for its ffmpeg
            listed = list(pool.map(packets, segments))
    if len({(p.extradata, p.timebase) for p in listed}) != 1:
        raise EncodeIncomplete(
            "the segments were encoded with different encoders or settings and cannot be joined "
            "without re-encoding; run every encode worker of this queue with the same ffmpeg and "
            "hardware (or video_mode='cpu'), and submit the job again")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="celery-animate-concat-") as listing:
        listing.write(_concat_list(segments))
        listing.flush()
        _run(["-f", "concat", "-safe", "0", "-protocol_whitelist", "file", "-i", listing.name,
              "-map", "0:v:0", "-c", "copy", *extra_output_args, "-y", str(output)],
             "joining the segments")
    return check_continuous(output, sum(len(p.pts) for p in listed))


def check_continuous(path: Path, n_frames: int) -> Packets:
    """``path``'s packets, once checked: ``n_frames`` frames whose presentation times are one frame
    duration apart, without gaps or repeats; else :class:`EncodeIncomplete`."""
    found = packets(path)
    if len(found.pts) != n_frames:
        raise EncodeIncomplete(f"the joined video has {len(found.pts)} frames, not {n_frames}")
    step = found.durations[0] if found.durations else 0
    ordered = sorted(found.pts)
    jumps = [i for i in range(1, len(ordered)) if ordered[i] - ordered[i - 1] != step]
    if step <= 0 or jumps:
        where = f"after frame {jumps[0] - 1}" if jumps else "throughout"
        raise EncodeIncomplete(f"the joined video's timestamps are not continuous ({where}); "
                               "submit the job again")
    return found
