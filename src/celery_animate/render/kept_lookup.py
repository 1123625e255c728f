"""Whether a cache job's whole video is kept: asked by each of its render chunks before it
copies or draws a frame (see :mod:`celery_animate.job.kept_video`)."""

from __future__ import annotations

from celery_animate.config import Settings
from celery_animate.encode.pvio_adapter import encoder_version
from celery_animate.frames import unpack_frame
from celery_animate.job import kept_video
from celery_animate.job.kept_video import KeptNote
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import animation_index
from celery_animate.render.cache_key import FrameKeys
from celery_animate.render.grab import poster_png
from celery_animate.stores import FrameStore
from celery_animate.stores.base import MAX_SEGMENT_BYTES


def video_is_kept(record: JobRecord, spec: JobSpec, keys: FrameKeys, store: FrameStore,
                  settings: Settings, noted: KeptNote | None) -> bool:
    """True when the job's video is kept and its chunks need not store a frame.

    ``noted`` is the outcome the chunk read at its start (:func:`kept_video.noted_outcome`):
    a note, once there, stays. Without one, the note is read again, and the first chunk to ask
    looks the video up: every frame's name, then the video's entry, which it
    copies (still sealed) into the job's store before noting the hit, and the job's poster
    from its first frame's entry. The others find its note, or carry on as without one while
    it is being looked up (their frames are then stored for nothing, and removed at the end).
    Raises :class:`~celery_animate.errors.ParamsExpired` when a chunk's params expired.
    """
    if not kept_video.takes_part(spec):
        return False
    outcome = noted or kept_video.read_note(record, keys.cache)
    if outcome is not None:
        return outcome.found
    if not kept_video.claim_lookup(record):
        return False
    frames = sorted((pair for chunk in range(spec.n_chunks)
                     for pair in record.load_chunk(chunk, spec.n_frames)), key=lambda pair: pair[0])
    names = [keys.frame(animation_index(spec.options, position), params)
             for position, params in frames]
    name = kept_video.video_entry_name(keys.cache, names, spec.options, spec.output,
                                       spec.segment_frames, encoder_version())
    entry = keys.cache.backend.get_many([name])[0]
    found = (entry is not None and len(entry) <= MAX_SEGMENT_BYTES
             and keys.cache.open(name, entry) is not None)
    if found:
        store.put_segment(record.job_id, kept_video.kept_slot(spec), entry)  # type: ignore[arg-type]
        first = keys.cache.get(names[0])  # the poster; an entry evicted meanwhile has none
        if first is not None:
            record.set_poster(poster_png(unpack_frame(first, settings.max_frame_pixels)))
    kept_video.note(record, keys.cache, KeptNote(name, found))
    return found
