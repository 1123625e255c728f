"""A job's whole video in the frame cache: found once, before its frames are copied.

A cluster job with ``cache=True`` whose every frame and encoding setting were
rendered before need not copy a single frame. The first of its render chunks
to run claims the lookup (:func:`claim_lookup`), derives the name of the whole
video's entry from every frame's key (:func:`video_entry_name`), and notes in
the job's record whether the cache holds it (:func:`note`). On a hit it first
copies the sealed entry into the job's frame store, in the slot after its
segments (:func:`kept_slot`), so that the job owns what it will publish (the
cache may evict its entry meanwhile) and the job's end removes it. The other
chunks then report their frames as done without storing them, and the chord's
callback publishes the kept video. On a miss, the callback keeps the video it
joins under that name for the next run.

The note is signed with a key derived from the workers' cache secret
(:meth:`FrameCache.sign`), and the copied entry keeps its seal: whoever can
write to the record or the store can neither make chunks skip their frames
nor have a video filed under a name of their choosing. A note that does not
verify is no note.

Only jobs of several segments, one output and no stills take part: their
callback joins segments, and nothing else needs their frames.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from celery_animate import wire
from celery_animate.cache import FrameCache
from celery_animate.errors import EncodeIncomplete
from celery_animate.formats import format_of
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions

#: Bumped whenever a kept video's entry or its name's material changes layout.
VIDEO_ENTRY_VERSION = 1
#: Record fields: the claim of the lookup, and its signed outcome.
CLAIM_FIELD, NOTE_FIELD = "kept_lookup", "kept_video"
#: What a kept video's entry says about it beside its bytes, and their types.
ENTRY_FIELDS = {"n_frames": int, "width": int, "height": int, "fps": (int, float), "encoder": str}


def takes_part(spec: JobSpec) -> bool:
    """Whether the job's whole video may come from the cache: a cache job of several segments
    with one output and no stills."""
    return (spec.options.cache and spec.n_segments > 1 and not spec.extra_outputs
            and not spec.stills)


def video_entry_name(cache: FrameCache, frame_names: list[str], options: RenderOptions,
                     output: str, segment_frames: int, encoder_version: str) -> str:
    """The entry name of the video of frames keyed ``frame_names`` (in video order), encoded as
    ``options`` ask into ``output``'s format in segments of ``segment_frames`` frames by an
    encoder of ``encoder_version``."""
    material = wire.packb([VIDEO_ENTRY_VERSION, encoder_version, format_of(output), options.fps,
                           options.video_mode, options.video_quality, options.video_preset,
                           options.video_extra_ffmpeg_params, segment_frames, frame_names])
    return cache.name("video", material)


def pack_entry(fields: dict[str, Any], data: bytes) -> bytes:
    """A kept video's entry: its ``fields`` (see :data:`ENTRY_FIELDS`) and its file's bytes."""
    return wire.packb([{key: fields[key] for key in ENTRY_FIELDS}, data])


def unpack_entry(content: bytes) -> tuple[dict[str, Any], bytes]:
    """The fields and bytes of a kept video's entry; :class:`EncodeIncomplete` when it is not
    one (written by another version)."""
    try:
        fields, data = wire.unpackb(content)
    except (ValueError, TypeError) as exc:
        raise EncodeIncomplete(f"a kept video's entry is not one ({exc}): submit the job again "
                               "with cache=False") from exc
    if (not isinstance(fields, dict) or not isinstance(data, bytes)
            or any(not isinstance(fields.get(key), kind) or isinstance(fields.get(key), bool)
                   for key, kind in ENTRY_FIELDS.items())):
        raise EncodeIncomplete("a kept video's entry is not one: submit the job again with "
                               "cache=False")
    return {key: fields[key] for key in ENTRY_FIELDS}, data


def kept_slot(spec: JobSpec) -> int:
    """Where in the job's encoded segments the kept video's entry is copied: after the last."""
    return spec.n_segments


@dataclass(frozen=True)
class KeptNote:
    """The lookup's outcome: the video's entry ``name``, and whether it was ``found``."""

    name: str
    found: bool


def claim_lookup(record: JobRecord) -> bool:
    """True for the one caller that is to look the job's video up (False for the others, and
    when the record is gone)."""
    token = secrets.token_hex(8)
    return record.set_once(CLAIM_FIELD, token) == token


def note(record: JobRecord, cache: FrameCache, outcome: KeptNote) -> None:
    """Note the lookup's ``outcome`` in the record, signed."""
    record.set_field(NOTE_FIELD, f"{'hit' if outcome.found else 'miss'} {outcome.name} "
                                 f"{cache.sign(_signed_text(record, outcome))}")


def read_note(record: JobRecord, cache: FrameCache) -> KeptNote | None:
    """The lookup's outcome noted in the record; None before it is noted, or when the note was
    not signed by these workers for this job."""
    value = record.field(NOTE_FIELD)
    parts = value.split(" ") if value else []
    if len(parts) != 3 or parts[0] not in ("hit", "miss"):
        return None
    outcome = KeptNote(parts[1], parts[0] == "hit")
    valid = hmac.compare_digest(cache.sign(_signed_text(record, outcome)), parts[2])
    return outcome if valid else None


def noted_outcome(record: JobRecord, spec: JobSpec, cache: FrameCache | None) -> KeptNote | None:
    """What the job's lookup found, as :func:`read_note` gives it; None also for a job that does
    not take part (:func:`takes_part`) and for a worker without the cache."""
    if cache is None or not takes_part(spec):
        return None
    return read_note(record, cache)


def _signed_text(record: JobRecord, outcome: KeptNote) -> str:
    """What a note's signature covers: the outcome, the entry's name and the job (a note copied
    into another job's record does not verify there)."""
    return f"{'hit' if outcome.found else 'miss'} {outcome.name} {record.job_id}"
