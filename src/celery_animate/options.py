"""The values users pass in and get back: encode/render options, progress, results."""

from __future__ import annotations

import base64
import html
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery_animate import wire
from celery_animate.errors import InvalidArgument
from celery_animate.ffmpeg_args import check_extra_ffmpeg_params
from celery_animate.frames import check_dpi
from celery_animate.params import IndexedFrameParams
from celery_animate.states import TERMINAL_STATES

VIDEO_MODES = ("auto", "gpu", "cpu")
#: Frame indices an animation may have, at most (a bound for what a job's options may say).
MAX_FRAME_INDEX = 2**31
_PRESET = re.compile(r"[a-z0-9]{1,16}")


def as_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """``value`` as a Python int (numpy integers included); :class:`InvalidArgument` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgument(f"{name} must be an int, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidArgument(f"{name} must be at least {minimum}, got {value}")
    return value


def as_priority(value: Any, lowest: int) -> int:
    """``value`` as a Celery priority, 0 (served first) to ``lowest``; :class:`InvalidArgument` otherwise."""
    priority = as_int(value, "priority", minimum=0)
    if priority > lowest:
        raise InvalidArgument(f"priority must be from 0 (first) to {lowest} (last), got {priority}")
    return priority


@dataclass
class RenderOptions:
    """How frames are rendered and encoded; the ``make_video`` arguments of the same names.

    Raises :class:`InvalidArgument` (a ``ValueError``) on construction for
    values the encoder would reject.
    """

    fps: float
    video_mode: str = "auto"
    video_quality: int | None = None
    video_preset: str | None = None
    video_extra_ffmpeg_params: list[str] | None = None
    savefig_params: dict[str, Any] = field(default_factory=dict)
    reuse_figure_object: bool = True
    plotting_log_interval: int | None = None
    saving_log_interval: int | None = None
    #: Redraw only what ``update()`` changed (same pixels as a full draw).
    blit: bool = True
    #: The animation's frames this video shows (``make_video``'s ``frames=``): the video's
    #: frame ``k`` is the animation's frame ``frame_start + k * frame_step``, which ``update()``
    #: gets as its ``frame_idx``.
    frame_start: int = 0
    frame_step: int = 1
    #: Take unchanged frames (and encoded segments) from the workers' frame cache, and keep
    #: new ones there (``make_video``'s ``cache=``).
    cache: bool = False

    def __post_init__(self) -> None:
        fps = self.fps
        if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not fps > 0:
            raise InvalidArgument(f"fps must be a positive number of frames per second, got {fps!r}")
        if not math.isfinite(fps):
            raise InvalidArgument("fps must be finite")
        self.fps = int(fps) if isinstance(fps, numbers.Integral) else float(fps)
        if self.video_mode not in VIDEO_MODES:
            raise InvalidArgument(
                f"video_mode must be one of {', '.join(VIDEO_MODES)}, got {self.video_mode!r}"
            )
        quality = self.video_quality
        if quality is not None:
            if isinstance(quality, bool) or not isinstance(quality, numbers.Integral) \
                    or not 0 <= quality <= 51:
                raise InvalidArgument(
                    f"video_quality must be an int from 0 (best) to 51 (worst), or None, got {quality!r}"
                )
            self.video_quality = int(quality)
        if self.video_preset is not None and (
                not isinstance(self.video_preset, str) or not _PRESET.fullmatch(self.video_preset)):
            raise InvalidArgument(f"video_preset must be an encoder preset name or None, "
                                  f"got {self.video_preset!r}")
        if self.video_extra_ffmpeg_params is not None:
            self.video_extra_ffmpeg_params = check_extra_ffmpeg_params(self.video_extra_ffmpeg_params)
        for name in ("plotting_log_interval", "saving_log_interval"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, as_int(value, name, minimum=1))
        self.frame_start = as_int(self.frame_start, "frame_start", minimum=0)
        self.frame_step = as_int(self.frame_step, "frame_step", minimum=1)
        if self.frame_start >= MAX_FRAME_INDEX or self.frame_step >= MAX_FRAME_INDEX:
            raise InvalidArgument(f"frame_start and frame_step must be below {MAX_FRAME_INDEX}")
        for name in ("blit", "cache"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgument(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.savefig_params or {}, dict):
            raise InvalidArgument(f"savefig_params must be a dict, got {self.savefig_params!r}")
        self.savefig_params = dict(self.savefig_params or {})
        wire.check_packable(self.savefig_params, "savefig_params")
        check_dpi(self.savefig_params)


def animation_index(options: RenderOptions, position: int) -> int:
    """The animation's frame index (what ``update()`` gets) of the video's frame ``position``."""
    return options.frame_start + position * options.frame_step


def video_position(options: RenderOptions, frame_idx: int) -> int:
    """The video's frame that shows the animation's frame ``frame_idx`` (one of its frames)."""
    return (frame_idx - options.frame_start) // options.frame_step


def select_frames(param_by_frame: Any, frames: range | slice, n_frames: int | None
                  ) -> tuple[list[Any], int, int]:
    """The params of the animation's ``frames`` (a ``range`` or ``slice`` of its frame indices)
    out of ``param_by_frame`` (a sequence: a list, a tuple, an array), the first of them and
    the step: ``(params, frame_start, frame_step)``. ``n_frames``, if given, is the animation's
    length. Raises :class:`InvalidArgument` for a negative step, no frame selected, or
    ``param_by_frame`` that cannot be indexed."""
    if not hasattr(param_by_frame, "__getitem__") or not hasattr(param_by_frame, "__len__"):
        raise InvalidArgument("frames= needs param_by_frame as a sequence (a list, a tuple, an "
                              f"array) to pick frames from, got {type(param_by_frame).__qualname__}")
    if isinstance(frames, range):
        frames = slice(frames.start, frames.stop, frames.step)
    if not isinstance(frames, slice):
        raise InvalidArgument(f"frames must be a range or a slice, got {frames!r}")
    length = len(param_by_frame) if n_frames is None else min(n_frames, len(param_by_frame))
    try:
        chosen = range(length)[frames]
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"frames={frames!r}: {exc}") from None
    if chosen.step < 0:
        raise InvalidArgument(f"frames must go forward (a positive step), got {frames!r}")
    if not chosen:
        raise InvalidArgument(f"frames={frames!r} selects none of the animation's {length} frames")
    params = [param_by_frame[index] for index in chosen]
    if any(isinstance(item, IndexedFrameParams) for item in params):
        raise InvalidArgument("frames= picks params by their place in param_by_frame; it cannot "
                              "be combined with IndexedFrameParams")
    return params, chosen.start, chosen.step


@dataclass(frozen=True)
class Progress:
    """A snapshot of a job: ``rendered``/``encoded`` frames out of ``total``."""

    state: str
    rendered: int
    encoded: int
    total: int

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class RenderResult:
    """What a finished job produced. ``size_bytes`` is the MP4's size on disk, ``encode_seconds``
    the wall-clock seconds from the encoder's start to the video's rename into place."""

    output: str
    n_frames: int
    width: int
    height: int
    fps: float
    encoder: str
    size_bytes: int
    encode_seconds: float
    #: Every video the job wrote from its one render, ``output`` first (see ``make_video``'s
    #: ``output_file``), and the stills it kept (``stills=``), each where it is.
    outputs: list[str] = field(default_factory=list)
    stills: list[str] = field(default_factory=list)

    #: Videos up to this many bytes are embedded in a notebook; larger ones are linked.
    EMBED_LIMIT = 32 * 2**20

    def _repr_html_(self) -> str:
        """The video, playable, for Jupyter: embedded when small enough, else a link to it."""
        caption = html.escape(f"{self.output}: {self.n_frames} frames, {self.width}x{self.height}, "
                              f"{self.fps:g} fps, {self.encoder}, {self.size_bytes / 2**20:.2f} MB")
        if "://" in self.output:  # an object: fetching it needs credentials this value lacks
            return f"<p>{caption} (in an object store: RenderJob.url() gives a link that plays it)</p>"
        path = Path(self.output)
        if not path.is_file():
            return f"<p>{caption} (the file is not on this machine)</p>"
        suffix = path.suffix.lower()
        if path.stat().st_size > self.EMBED_LIMIT or suffix == ".zip":  # a zip of PNGs: a link
            return f'<p><a href="{html.escape(path.as_uri())}">{caption}</a></p>'
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        if suffix in (".gif", ".png"):  # a GIF, or the first still of a job of stills only
            shown = f'<img width="{self.width}" src="data:image/{suffix[1:]};base64,{data}">'
        else:
            kind = "webm" if suffix == ".webm" else "mp4"
            shown = (f'<video controls loop width="{self.width}" '
                     f'src="data:video/{kind};base64,{data}"></video>')
        return f"<figure>{shown}<figcaption>{caption}</figcaption></figure>"
