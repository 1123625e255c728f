"""The job spec: everything a worker needs to render and encode a job, as it crosses the wire."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from . import wire
from .options import RenderOptions


@dataclass
class JobSpec:
    """What to render (animator, frame count, chunking) and how to encode it (msgpack-able)."""

    animator_path: str
    animator_attrs: bytes
    output: str
    n_frames: int
    n_chunks: int
    frame_store: str
    options: RenderOptions

    def pack(self) -> bytes:
        return wire.packb(asdict(self))

    @classmethod
    def unpack(cls, data: bytes) -> JobSpec:
        fields = wire.unpackb(data)
        fields["options"] = RenderOptions(**fields["options"])
        return cls(**fields)
