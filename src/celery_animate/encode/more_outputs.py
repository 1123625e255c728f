"""The rest of a job's outputs, once its first video is published: more videos encoded from the
same stored frames (``output_file=["run.mp4", "run.gif"]``), and its stills.

A job with more videos is one segment, so every frame is still in the frame
store when its first video is published; each further video is encoded from
them as the first was. Stills were cut and kept as PNGs by the render tasks
that drew their frames (:func:`celery_animate.render.chunk.keep_pictures`),
so any job may have them, and a job of stills only (a ``.png`` output) has nothing
else. Each output appears as a video does (a temporary
file, then a rename or an upload), after the encode lease's commit: a
cancelled job publishes nothing more, and a job that fails part way keeps the
outputs it finished, each whole.
"""

from __future__ import annotations

import struct
import time
from dataclasses import replace

from celery_animate.config import Settings
from celery_animate.encode.encoder import encode_frames, publish_bytes
from celery_animate.encode.lease import EncodeLease
from celery_animate.encode.stored_frames import StoredFrames
from celery_animate.errors import EncodeIncomplete
from celery_animate.job import lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderResult, animation_index
from celery_animate.paths import output_path
from celery_animate.stores import FrameStore


def check_outputs(spec: JobSpec, settings: Settings) -> None:
    """Refuse (:class:`OutputPathRefused`) a job any of whose outputs this worker may not write,
    before the first is encoded: a job never publishes some outputs and then finds it may not
    write the next."""
    for output in spec.outputs:
        output_path(output, settings)


def publish_more(record: JobRecord, spec: JobSpec, settings: Settings, store: FrameStore,
                 lease: EncodeLease, first: RenderResult) -> RenderResult:
    """Encode and publish the job's further videos, then its stills; return ``first`` with every
    output listed. Raises what :func:`encode_frames` raises, and :class:`EncodeIncomplete` for a
    still that is not in the job's record (expired, or not a PNG)."""
    videos = [first.output]
    for extra in spec.extra_outputs:
        target = output_path(extra, settings)
        lifecycle.discard_stale_attempts(target, record.job_id, lease.generation)
        frames = StoredFrames(store, record.job_id, spec.n_frames,
                              max_pixels=settings.max_frame_pixels)
        result = encode_frames(frames, target, spec.options, lambda n: record.note_encoding(),
                               record.job_id, lease.generation, before_publish=lease.commit)
        videos.append(result.output)
    stills = [location for location, _ in publish_stills(record, spec, settings, lease)]
    return replace(first, outputs=videos, stills=stills)


def publish_stills(record: JobRecord, spec: JobSpec, settings: Settings,
                   lease: EncodeLease) -> list[tuple[str, bytes]]:
    """Publish the job's stills from its record; return where each went, with its PNG. Raises
    :class:`EncodeIncomplete` for a still that is not there (expired, or not a PNG)."""
    published = []
    for position in spec.stills:
        png = record.still(position)
        frame_idx = animation_index(spec.options, position)
        if png is None:
            raise EncodeIncomplete(f"the still of frame {frame_idx} is not in the job's record "
                                   "(it expired, or what is there is not a PNG): submit the job "
                                   "again")
        target = output_path(spec.still_output(position), settings)
        published.append((publish_bytes(png, target, record.job_id, lease.generation, lease.commit),
                          png))
    return published


def stills_only_result(published: list[tuple[str, bytes]], fps: float,
                       started: float) -> RenderResult:
    """The result of a job of stills only (a ``.png`` output): ``published`` (each still's
    location and PNG) and no video; ``started`` is ``time.monotonic()`` when publishing began."""
    width, height = struct.unpack(">II", published[0][1][16:24])  # the PNG's IHDR chunk
    locations = [location for location, _ in published]
    return RenderResult(output=locations[0], n_frames=len(published), width=width, height=height,
                        fps=fps, encoder="png", size_bytes=sum(len(png) for _, png in published),
                        encode_seconds=time.monotonic() - started, outputs=[], stills=locations)
