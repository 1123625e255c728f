"""The chord's callback's side of a kept video (see :mod:`celery_animate.job.kept_video`):
publish the one its render chunks found, or keep the one it joined."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import redis

from celery_animate.cache import FrameCache
from celery_animate.config import Settings
from celery_animate.encode.encoder import publish_bytes
from celery_animate.encode.join import Packets
from celery_animate.encode.lease import EncodeLease
from celery_animate.errors import EncodeIncomplete
from celery_animate.job import kept_video
from celery_animate.job.kept_video import KeptNote
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderResult
from celery_animate.paths import output_path
from celery_animate.stores import FrameStore


def publish_kept(record: JobRecord, spec: JobSpec, settings: Settings, store: FrameStore,
                 lease: EncodeLease, cache: FrameCache, outcome: KeptNote) -> RenderResult:
    """Publish the kept video the render chunks copied into the job's store, as an encoder
    publishes one (temporary file, then the lease's commit, then rename or upload). Raises
    :class:`EncodeIncomplete` when the copy is gone (expired after
    ``CELERY_ANIMATE_FRAME_TTL``, evicted) or is not the sealed entry the note names."""
    started = time.monotonic()
    content = cache.open(outcome.name, store.get_segment(record.job_id, kept_video.kept_slot(spec)))
    if content is None:
        raise EncodeIncomplete(
            f"job {record.job_id}'s video was found in the frame cache, but its copy in the frame "
            "store is gone (expired after CELERY_ANIMATE_FRAME_TTL, or evicted by Redis) or is "
            "not what was copied: submit the job again")
    fields, data = kept_video.unpack_entry(content)
    location = publish_bytes(data, output_path(spec.output, settings), record.job_id,
                             lease.generation, before_publish=lease.commit)
    record.add_encoded(spec.n_frames)
    record.add_seconds({"video_from_cache": 1})
    return RenderResult(output=location, **fields, size_bytes=len(data),
                        encode_seconds=time.monotonic() - started, outputs=[location])


def keeper(cache: FrameCache | None, outcome: KeptNote | None,
           encoder: str, fps: float) -> Callable[[Path, Packets], None] | None:
    """What keeps a joined video (its flushed file and what its packets say) under the name the
    render chunks looked it up by, when they found none; None when nothing is to be kept."""
    if cache is None or outcome is None or outcome.found:
        return None

    def keep(path: Path, packets: Packets) -> None:
        # The video is published whether or not the cache could keep it.
        with contextlib.suppress(OSError, redis.RedisError):
            if path.stat().st_size * 8 > cache.backend.max_bytes:
                return  # the cache would not keep it: do not read it
            width, height = packets.size
            fields = {"n_frames": len(packets.pts), "width": width, "height": height,
                      "fps": fps, "encoder": encoder}
            cache.put(outcome.name, kept_video.pack_entry(fields, path.read_bytes()))

    return keep
