"""A re-run that changed a few frames, finished in this process instead of on a cluster.

When an embedded render with ``cache=True`` finds all but a few of its frames
in the cache, and all but a few of its segments, starting a cluster costs more
than the work: this process draws the missing frames (after ``setup()``, as a
worker would), encodes the segments they fall in, takes every other segment
from the cache, and joins them. Each step is the cluster's own code
(``render_frames``, ``encode_frames``, ``segment_cache_name``,
``publish_segments``) with the same settings, so the frames, the segments and
the video are the same bytes a cluster makes; what it draws and encodes goes
into the cache for the next run.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from celery_animate.client.local_cache import KeptVideo
from celery_animate.client.progress import progress_bar
from celery_animate.config import Settings
from celery_animate.encode.encoder import encode_frames, publish_segments
from celery_animate.encode.pvio_adapter import LIBX264, planned_codec
from celery_animate.encode.segments import segment_cache_name
from celery_animate.encode.stored_frames import StoredFrames
from celery_animate.errors import EncodeIncomplete
from celery_animate.frames import pack_frame, unpack_frame
from celery_animate.ids import new_job_id
from celery_animate.job.spec import JobSpec, plan_segments
from celery_animate.options import RenderOptions, RenderResult, animation_index
from celery_animate.paths import output_path
from celery_animate.render.animator_base import AnimatorBase
from celery_animate.render.frame_loop import PreparedFigure, render_frames
from celery_animate.render.loading import animator_path, pack_attrs
from celery_animate.stores import MemoryFrameStore

#: Segments to encode, at most, for a re-run to be finished here: beyond, a cluster's several
#: processes are worth their start-up.
MAX_LOCAL_SEGMENTS = 2


def finish_here(kept: KeptVideo, animator: AnimatorBase, options: RenderOptions, output: str,
                settings: Settings, disable_progress: bool) -> RenderResult | None:
    """Make the video at ``output`` (a local path) in this process if at most
    :data:`MAX_LOCAL_SEGMENTS` of its segments lack frames in the cache or a cached encode;
    None (and nothing written) otherwise, or when the job is not one this path makes (one
    segment, a format other than MP4). Raises what the encoder raises."""
    n_frames = len(kept.frames)
    spec = JobSpec(animator_path(animator), pack_attrs(animator), output, n_frames, 1, options,
                   plan_segments(n_frames, settings.segment_length))
    if spec.n_segments < 2:
        return None
    payloads = kept.cache.get_many(kept.frame_names)
    missing = [position for position, payload in enumerate(payloads) if payload is None]
    touched = {position // spec.segment_frames for position in missing}
    if len(touched) > MAX_LOCAL_SEGMENTS:
        return None
    job_id = new_job_id()
    store = MemoryFrameStore(ttl=3600)
    for position, payload in enumerate(payloads):
        if payload is not None:
            store.put(job_id, position, payload)
    if missing:
        prepared = PreparedFigure.prepare(animator)
        drawn = render_frames(prepared, [(animation_index(options, p), kept.frames[p][1])
                                         for p in missing],
                              options.savefig_params, options.reuse_figure_object, None,
                              settings.max_frame_pixels, options.blit and settings.auto_blit)
        for position, (_, rgb) in zip(missing, progress_bar(
                iterable=drawn, total=len(missing), desc="Rendering changed frames",
                unit="frame", disable=disable_progress), strict=True):
            payload = pack_frame(rgb)
            store.put(job_id, position, payload)
            kept.cache.put(kept.frame_names[position], payload)
    height, width = unpack_frame(store.get_many(job_id, [0])[0], settings.max_frame_pixels).shape[:2]
    codec = planned_codec(options.video_mode, height, width)
    encode_options = replace(options, video_mode="cpu" if codec == LIBX264 else "gpu")
    with tempfile.TemporaryDirectory(prefix=f"celery-animate-{job_id}-") as tmp:
        paths = []
        for segment in range(spec.n_segments):
            frames = spec.segment_range(segment)
            name = segment_cache_name(kept.cache, spec, codec, store, job_id, frames)
            data = kept.cache.get(name) if name is not None else None
            path = Path(tmp) / f"{segment:05d}.mp4"
            if data is None:
                result = encode_frames(StoredFrames(store, job_id, frames.stop, first=frames.start,
                                                    max_pixels=settings.max_frame_pixels),
                                       path, encode_options, job_id=job_id)
                if result.encoder != codec:
                    raise EncodeIncomplete(f"segment {segment} fell back from {codec} to "
                                           f"{result.encoder}: render with video_mode='cpu'")
                if name is not None:
                    kept.cache.put(name, path.read_bytes())
            else:
                path.write_bytes(data)
            paths.append(path)
        result = publish_segments(paths, output_path(output, settings), options, codec, job_id, 0,
                                  before_publish=lambda: None)
    return replace(result, outputs=[result.output], stills=[])
