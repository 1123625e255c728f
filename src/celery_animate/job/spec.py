"""The job spec: everything a worker needs to render and encode a job, as it crosses the wire.

It names what to render and how to encode it, never where workers keep
frames or how they reach anything: those come from each worker's own
settings. A spec read back from Redis is checked field by field, since
whoever can write to that Redis can write a spec.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from celery_animate import wire
from celery_animate.errors import InvalidArgument
from celery_animate.formats import MAX_OUTPUTS, MAX_STILLS, format_of, segmentable, still_name
from celery_animate.options import RenderOptions, animation_index, as_int

#: Longest animator path and output path a spec may carry, in characters.
MAX_PATH_CHARS = 4096
#: Most encode segments one job may have, and the fewest frames in a segment of a segmented job.
MAX_SEGMENTS, MIN_SEGMENT_FRAMES = 10_000, 8


def plan_segments(n_frames: int, segment_frames: int) -> int:
    """Frames per segment for a job of ``n_frames`` when segments hold at most ``segment_frames``:
    the job cut into equal segments (the last may be shorter); ``n_frames`` itself for a short job.

    Raises :class:`InvalidArgument` for ``n_frames`` below 1 (a job has at least one frame).
    """
    n_frames = as_int(n_frames, "n_frames", minimum=1)
    n_segments = min(MAX_SEGMENTS, -(-n_frames // max(MIN_SEGMENT_FRAMES, segment_frames)))
    return -(-n_frames // n_segments)


@dataclass
class JobSpec:
    """What to render (animator, frame count, chunking) and how to encode it (msgpack-able)."""

    animator_path: str
    animator_attrs: bytes
    output: str
    n_frames: int
    n_chunks: int
    options: RenderOptions
    #: Frames per encode segment (see :func:`plan_segments`); 0 or ``n_frames`` for one segment.
    segment_frames: int = 0
    #: More outputs encoded from the same frames (a job with any is one segment).
    extra_outputs: list[str] = dataclasses.field(default_factory=list)
    #: Video positions of the frames kept as PNG stills beside the output.
    stills: list[int] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.segment_frames:
            self.segment_frames = self.n_frames

    @property
    def outputs(self) -> list[str]:
        """Every output the job writes: its videos, then its stills."""
        return [self.output, *self.extra_outputs, *(self.still_output(p) for p in self.stills)]

    def still_output(self, position: int) -> str:
        """Where the still of the video's frame ``position`` goes (named by its animation index)."""
        return still_name(self.output, animation_index(self.options, position))

    @property
    def n_segments(self) -> int:
        return -(-self.n_frames // self.segment_frames)

    def segment_range(self, segment: int) -> range:
        """The frame indices of segment ``segment``."""
        start = segment * self.segment_frames
        return range(start, min(start + self.segment_frames, self.n_frames))

    def pack(self) -> bytes:
        return wire.packb(asdict(self))

    @classmethod
    def unpack(cls, data: bytes) -> JobSpec:
        """Read a packed spec; raises :class:`InvalidArgument` naming what is wrong with it."""
        fields = wire.unpackb(data)
        if not isinstance(fields, dict):
            raise InvalidArgument("the job spec is not a map")
        return cls.from_fields(fields)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> JobSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        # A client of a version before several outputs sends neither: it meant none.
        fields = {"extra_outputs": [], "stills": [], **fields}
        if set(fields) != names:
            unknown, missing = sorted(set(fields) - names), sorted(names - set(fields))
            raise InvalidArgument(f"the job spec has unknown fields {unknown} or lacks {missing}")
        for name in ("animator_path", "output"):
            if not isinstance(fields[name], str) or not 0 < len(fields[name]) <= MAX_PATH_CHARS:
                raise InvalidArgument(f"the job spec's {name} must be a non-empty str")
        if not isinstance(fields["animator_attrs"], bytes):
            raise InvalidArgument("the job spec's animator_attrs must be bytes")
        n_frames = as_int(fields["n_frames"], "n_frames", minimum=1)
        n_chunks = as_int(fields["n_chunks"], "n_chunks", minimum=1)
        if n_chunks > n_frames:
            raise InvalidArgument(f"the job spec has {n_chunks} chunks for {n_frames} frames")
        segment_frames = as_int(fields["segment_frames"], "segment_frames", minimum=1)
        too_many = -(-n_frames // segment_frames) > MAX_SEGMENTS
        if segment_frames < min(MIN_SEGMENT_FRAMES, n_frames) or too_many:
            raise InvalidArgument(f"the job spec's segments of {segment_frames} frames are too short: "
                                  f"at least {MIN_SEGMENT_FRAMES} frames and {MAX_SEGMENTS} segments at most")
        fmt = format_of(fields["output"])
        if segment_frames < n_frames and not segmentable(fmt):
            raise InvalidArgument(f"the job spec asks for segments of a {fmt} output, which is "
                                  "encoded whole")
        options = fields["options"]
        option_names = {f.name for f in dataclasses.fields(RenderOptions)}
        if not isinstance(options, dict) or not set(options) <= option_names:
            raise InvalidArgument("the job spec's options are not RenderOptions")
        extra, stills = fields["extra_outputs"], fields["stills"]
        if not isinstance(extra, list) or len(extra) >= MAX_OUTPUTS or not all(
                isinstance(o, str) and 0 < len(o) <= MAX_PATH_CHARS for o in extra):
            raise InvalidArgument(f"the job spec's extra outputs must be at most {MAX_OUTPUTS - 1} "
                                  "non-empty str")
        if not isinstance(stills, list) or len(stills) > MAX_STILLS or len(set(stills)) != len(stills) \
                or not all(type(k) is int and 0 <= k < n_frames for k in stills):
            raise InvalidArgument(f"the job spec's stills must be at most {MAX_STILLS} distinct "
                                  "frame positions of the job")
        if extra and segment_frames < n_frames:
            raise InvalidArgument("the job spec asks for segments of a job with several outputs, "
                                  "which is encoded whole")
        return cls(fields["animator_path"], fields["animator_attrs"], fields["output"], n_frames,
                   n_chunks, RenderOptions(**options), min(segment_frames, n_frames), extra, stills)
