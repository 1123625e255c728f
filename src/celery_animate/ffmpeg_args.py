"""Extra encoder options as data: ``video_extra_ffmpeg_params`` checked against an allowlist.

The list a user passes is appended to ffmpeg's command line on the encode
worker, where a stray ``-i``, a second output, a protocol URL or a filter
that opens files would read or write anything the worker can. So each
option must be one of :data:`ALLOWED_OPTIONS`, take exactly one value of the
shape listed there, and video filters must come from :data:`ALLOWED_FILTERS`
with plain arguments. Checked on the client before enqueueing and again on
the worker, whatever the message says.
"""

from __future__ import annotations

import re

from celery_animate.errors import InvalidArgument

_INT = r"-?\d{1,6}"
_NUMBER = r"-?\d{1,6}(\.\d{1,6})?"
_BITRATE = r"\d{1,7}(\.\d{1,3})?[kKmM]?"

#: option -> regular expression its value must match in full. What each does:
ALLOWED_OPTIONS: dict[str, str] = {
    "-crf": _NUMBER,              # constant rate factor (quality; lower is better)
    "-qp": _INT,                  # constant quantiser
    "-cq": _INT,                  # NVENC's constant quality
    "-b:v": _BITRATE,             # target bitrate, e.g. 4M
    "-maxrate": _BITRATE,         # peak bitrate
    "-minrate": _BITRATE,
    "-bufsize": _BITRATE,         # rate-control buffer
    "-g": _INT,                   # keyframe interval (GOP length), frames
    "-keyint_min": _INT,          # shortest GOP, frames
    "-bf": _INT,                  # B-frames between references
    "-refs": _INT,                # reference frames
    "-sc_threshold": _INT,        # scene-cut sensitivity (0 turns scene cuts off)
    "-threads": _INT,             # encoder threads
    "-rc": r"(vbr|cbr|constqp|vbr_hq|cbr_hq)",  # NVENC rate control
    "-tune": r"(film|animation|grain|stillimage|fastdecode|zerolatency|psnr|ssim|hq|ll|ull)",
    "-preset": r"(ultrafast|superfast|veryfast|faster|fast|medium|slow|slower|veryslow|placebo"
               r"|p[1-7])",
    "-profile:v": r"(baseline|main|high|high10|high422|high444|high444p)",
    "-level": r"\d(\.\d)?",       # H.264 level, e.g. 4.1
    "-level:v": r"\d(\.\d)?",
    "-pix_fmt": r"(yuv420p|yuv422p|yuv444p|yuvj420p|yuv420p10le|nv12)",  # output pixel format
    "-movflags": r"\+?(faststart)",                      # moov atom first, for web playback
    "-color_range": r"(tv|pc|mpeg|jpeg)",
    "-colorspace": r"(bt709|bt470bg|smpte170m|bt2020nc)",
    "-color_primaries": r"(bt709|bt470bg|smpte170m|bt2020)",
    "-color_trc": r"(bt709|gamma22|gamma28|smpte170m|iec61966-2-1|bt2020-10)",
    "-vf": "filters",             # a filter chain, see ALLOWED_FILTERS
    "-filter:v": "filters",
}

#: Video filters that neither open files nor take extra inputs.
ALLOWED_FILTERS = frozenset({
    "scale", "fps", "format", "realtime", "setpts", "crop", "pad", "hflip", "vflip", "transpose",
    "eq", "hue", "unsharp", "gblur", "boxblur", "tpad", "fade", "null", "setsar", "setdar",
    "deflicker", "noise", "colorspace", "negate", "rotate",
})

# Filter arguments: names, numbers and ffmpeg expressions; no quotes, escapes, labels or paths.
_FILTER_ARGS = re.compile(r"[A-Za-z0-9_.:=+\-*/()<>, ]{0,200}")
_FILTER_NAME = re.compile(r"[a-z0-9_]{1,32}")

#: Most options one job may pass.
MAX_ARGS = 64


def check_filters(chain: str) -> None:
    """Raise :class:`InvalidArgument` unless ``chain`` is a plain chain of allowed filters."""
    if ";" in chain or "[" in chain or "]" in chain:
        raise InvalidArgument(
            f"video filter {chain!r}: only a single chain of filters is allowed (no ';' or [labels])")
    for part in chain.split(","):
        name, _, args = part.strip().partition("=")
        if not _FILTER_NAME.fullmatch(name) or name not in ALLOWED_FILTERS:
            raise InvalidArgument(
                f"video filter {name!r} is not allowed in video_extra_ffmpeg_params; allowed: "
                f"{', '.join(sorted(ALLOWED_FILTERS))}")
        if not _FILTER_ARGS.fullmatch(args):
            raise InvalidArgument(f"video filter {part.strip()!r} has arguments that are not allowed "
                                  "(no quotes, backslashes, brackets or ';')")


def check_extra_ffmpeg_params(args: object) -> list[str]:
    """Return ``args`` as a list if every option and value is allowed.

    Raises :class:`InvalidArgument` naming the first option or value that is
    not: an unknown option (``-i``, ``-f``, ``-map``, an output path, ...), a
    value of the wrong shape, or an option without its value.
    """
    if not isinstance(args, (list, tuple)) or not all(isinstance(a, str) for a in args):
        raise InvalidArgument(f"video_extra_ffmpeg_params must be a list of str, got {args!r}")
    if len(args) > 2 * MAX_ARGS:
        raise InvalidArgument(f"video_extra_ffmpeg_params has more than {MAX_ARGS} options")
    for position in range(0, len(args), 2):
        option = args[position]
        shape = ALLOWED_OPTIONS.get(option)
        if shape is None:
            raise InvalidArgument(
                f"ffmpeg option {option!r} is not allowed in video_extra_ffmpeg_params (inputs, "
                f"outputs, formats, maps and protocols never are); allowed: {', '.join(ALLOWED_OPTIONS)}")
        if position + 1 == len(args):
            raise InvalidArgument(f"ffmpeg option {option} in video_extra_ffmpeg_params needs a value")
        value = args[position + 1]
        if shape == "filters":
            check_filters(value)
        elif not re.fullmatch(shape, value):
            raise InvalidArgument(f"value {value!r} is not allowed for ffmpeg option {option}")
    return list(args)
