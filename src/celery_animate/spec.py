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

from . import wire
from .errors import InvalidArgument
from .options import RenderOptions, as_int

#: Longest animator path and output path a spec may carry, in characters.
MAX_PATH_CHARS = 4096


@dataclass
class JobSpec:
    """What to render (animator, frame count, chunking) and how to encode it (msgpack-able)."""

    animator_path: str
    animator_attrs: bytes
    output: str
    n_frames: int
    n_chunks: int
    options: RenderOptions

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
        options = fields["options"]
        option_names = {f.name for f in dataclasses.fields(RenderOptions)}
        if not isinstance(options, dict) or not set(options) <= option_names:
            raise InvalidArgument("the job spec's options are not RenderOptions")
        return cls(fields["animator_path"], fields["animator_attrs"], fields["output"], n_frames,
                   n_chunks, RenderOptions(**options))
