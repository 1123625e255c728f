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
from celery_animate.states import TERMINAL_STATES

VIDEO_MODES = ("auto", "gpu", "cpu")
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
        if not isinstance(self.blit, bool):
            raise InvalidArgument(f"blit must be True or False, got {self.blit!r}")
        if not isinstance(self.savefig_params or {}, dict):
            raise InvalidArgument(f"savefig_params must be a dict, got {self.savefig_params!r}")
        self.savefig_params = dict(self.savefig_params or {})
        wire.check_packable(self.savefig_params, "savefig_params")
        check_dpi(self.savefig_params)


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

    #: Videos up to this many bytes are embedded in a notebook; larger ones are linked.
    EMBED_LIMIT = 32 * 2**20

    def _repr_html_(self) -> str:
        """The video, playable, for Jupyter: embedded when small enough, else a link to it."""
        caption = html.escape(f"{self.output}: {self.n_frames} frames, {self.width}x{self.height}, "
                              f"{self.fps:g} fps, {self.encoder}, {self.size_bytes / 2**20:.2f} MB")
        path = Path(self.output)
        if not path.is_file():
            return f"<p>{caption} (the file is not on this machine)</p>"
        if path.stat().st_size > self.EMBED_LIMIT:
            return f'<p><a href="{html.escape(path.as_uri())}">{caption}</a></p>'
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return (f'<figure><video controls loop width="{self.width}" '
                f'src="data:video/mp4;base64,{data}"></video><figcaption>{caption}</figcaption>'
                "</figure>")
