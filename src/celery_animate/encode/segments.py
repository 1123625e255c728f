"""Segmented encoding: a long job's video is encoded in segments by several encoders at once.

Each segment (``spec.segment_range(k)``) is encoded by its own task, which
the render task that stores the segment's last frame sends. So an encode
process is only ever held while it encodes, and other jobs' encodes get it
between segments. (Segment tasks sent before their frames were all rendered,
as a stranger might, try again later.) The segment is encoded into a
temporary file of the encoder's own (never beside the output), checked, and
its bytes put into the frame store beside the frames
(:meth:`FrameStore.put_segment`); only then is the segment marked finished
and its frames leave the frame store, which is what bounds the store. So
encoders share nothing but the store: no output directory need be shared.
The chord's callback then encodes whatever segment nobody did, reads every
segment back into a temporary directory of its own, checks each (a readable
video of the segment's frame count: what the store returns is not trusted),
joins them by stream copy and publishes the video (:func:`encode_segmented`).
Stored segments cost about 0.5 MB per 60 frames of 1280x720 until the join;
:func:`celery_animate.job.lifecycle.purge` deletes them when the job ends.
The render side's half of the bound is :func:`celery_animate.job.window.pause`.

Every segment uses the job's one encoder: the first segment to start
records the codec it will use, and a worker that would use another fails
the job rather than make a video that cannot be joined.

A segment gives its encode process up to another job whose encoder waits
ahead of it in the queue (a short job submitted beside a long one), while
less than half its segment is encoded: it stops, drops its partial file and
raises :class:`SegmentYielded`, at most :data:`MAX_YIELDS` times per segment.
A short job then waits for a few frames of the long job's encode, not for a
whole segment.
"""

from __future__ import annotations

import contextlib
import hashlib
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import redis

from celery_animate import wire
from celery_animate.cache import FrameCache
from celery_animate.config import Settings
from celery_animate.connection import REDIS_SCHEMES, redis_client
from celery_animate.encode.contention import other_job_waiting
from celery_animate.encode.encoder import encode_frames, publish_segments
from celery_animate.encode.join import Packets, packets
from celery_animate.encode.kept_video import keeper, publish_kept
from celery_animate.encode.lease import EncodeLease
from celery_animate.encode.more_outputs import publish_more
from celery_animate.encode.pvio_adapter import LIBX264, encoder_version, planned_codec
from celery_animate.encode.stored_frames import StoredFrames
from celery_animate.encode.waiter import FrameWaiter, progress_reporter
from celery_animate.errors import (
    ConfigurationError,
    EncodeAbandoned,
    EncodeIncomplete,
    InvalidArgument,
    SegmentYielded,
    TryLater,
    WorkerLost,
)
from celery_animate.formats import format_of
from celery_animate.frames import unpack_frame
from celery_animate.job import kept_video, lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions
from celery_animate.paths import output_path, segment_path
from celery_animate.stores import FrameStore

#: Seconds a segment whose frames are not all rendered waits before it looks again, per
#: segment it is past the first unfinished one, and at most.
PAUSE_SECONDS, MAX_PAUSE_SECONDS = 1.0, 30.0
#: Seconds the chord's callback waits, in its process, for the segments other encoders are on
#: (asking every JOIN_WAIT_STEP seconds); then seconds before it looks again.
JOIN_WAIT_SECONDS, JOIN_WAIT_STEP, JOIN_POLL_SECONDS = 0.5, 0.02, 0.25
#: Times one segment's encode gives its process up to another job, at most: beyond that it
#: keeps it, so that neither a stream of short jobs nor forged messages starve a long one.
MAX_YIELDS = 2
#: Bumped whenever this package encodes the same frames with the same settings into other bytes.
SEGMENT_FORMAT_VERSION = 1


def _job_codec(record: JobRecord, spec: JobSpec, store: FrameStore, settings: Settings,
               first_frame: int) -> str:
    """The codec every segment of the job uses: recorded by the first segment to start."""
    payload = store.get_many(record.job_id, [first_frame])[0]
    if payload is None:
        raise TryLater(1.0, f"frame {first_frame} is not stored yet")
    height, width = unpack_frame(payload, settings.max_frame_pixels).shape[:2]
    mine = planned_codec(spec.options.video_mode, height, width)
    recorded = record.claim_codec(mine)
    if recorded is None:
        raise EncodeAbandoned("the job's record is gone")
    if recorded != mine:
        raise ConfigurationError(
            f"this job's segments are encoded with {recorded}, but this encode worker would use "
            f"{mine}: segments of one video must share an encoder. Run the encode workers of "
            "queue on the same kind of machine, or submit with video_mode='cpu'")
    return recorded


def yielding_reporter(report: Callable[[int], None], record: JobRecord, broker: redis.Redis,
                      queue: str, segment: int, priority: int, n_frames: int
                      ) -> Callable[[int], None]:
    """``report``, which also raises :class:`SegmentYielded` while fewer than half of the
    segment's ``n_frames`` are encoded if another job's encoder waits ahead of ``priority`` in
    the encode ``queue`` on ``broker``, at most :data:`MAX_YIELDS` times per segment."""
    kept = False  # this segment has given way enough: stop looking

    def encoded(n: int) -> None:
        nonlocal kept
        report(n)
        if kept or 2 * n >= n_frames or not other_job_waiting(broker, queue, priority,
                                                               record.job_id):
            return
        if record.count_yield(segment) > MAX_YIELDS:
            kept = True
            return
        raise SegmentYielded(segment)
    return encoded


def encode_one_segment(record: JobRecord, spec: JobSpec, settings: Settings, store: FrameStore,
                       segment: int, when_rendered: bool, priority: int | None = None,
                       cache: FrameCache | None = None) -> bool:
    """Encode segment ``segment`` into a temporary file of this process, put its bytes into the
    frame store, mark it finished and drop its frames; False if someone else holds it. With
    ``when_rendered``, raises :class:`TryLater` unless every frame of the segment is in the store
    (the chord's callback knows they are all rendered). With the ``priority`` of its task, raises
    :class:`SegmentYielded` when it gives way to another job (see :func:`yielding_reporter`).
    With a frame ``cache`` and a job that asks for it, a segment encoded before from the same
    frames with the same settings is taken from the cache (:func:`segment_cache_name`)."""
    frames = spec.segment_range(segment)
    if when_rendered and not store.has_all(record.job_id, frames.stop, start=frames.start):
        ahead = segment - record.first_unfinished_segment()
        raise TryLater(min(MAX_PAUSE_SECONDS, PAUSE_SECONDS * max(1, ahead)),
                       f"segment {segment}'s frames are not all rendered")
    part = f":seg{segment}"
    began = time.perf_counter()
    lease = EncodeLease(record, part=part)
    if not lease.acquire():
        return False
    output = output_path(spec.output, settings)
    # Named as the segment was beside the output (the encode log names it), in a directory of
    # this attempt's own: nothing of it is where another encoder could see it, or need it.
    prefix = _temp_prefix(record.job_id, f"s{segment}")
    workdir: Path | None = None
    try:
        workdir = Path(tempfile.mkdtemp(prefix=prefix))
        target = workdir / segment_path(output, record.job_id, segment).name
        record.note_encoding()
        deaths = record.begin_encode_attempt(lease.generation, part)
        if deaths >= settings.max_deliveries:
            raise WorkerLost(f"the encoder's process died {deaths} times while encoding segment "
                             f"{segment} (frames {frames.start}-{frames.stop - 1}): see the encode "
                             "workers' logs")
        _discard_stale_workdirs(prefix, keep=workdir)
        codec = _job_codec(record, spec, store, settings, frames.start)
        options = replace(spec.options, video_mode="cpu" if codec == LIBX264 else "gpu")
        name = (segment_cache_name(cache, spec, codec, store, record.job_id, frames)
                if cache is not None and spec.options.cache else None)
        data = cache.get(name) if name is not None else None  # type: ignore[union-attr]
        if data is None:
            data = _encode(record, spec, settings, store, segment, options, codec, target,
                           lease, priority)
            if name is not None:
                cache.put(name, data)  # type: ignore[union-attr]
        else:
            record.add_seconds({"segments_from_cache": 1})
        lease.check()  # an encoder that lost the segment stores nothing
        # Stored before it is marked finished: a finished segment is always in the store (until
        # it expires), and its frames go only once it is.
        store.put_segment(record.job_id, segment, data)
        if record.finish_segment(segment, len(frames)):
            lifecycle.discard_frames(store, record.job_id, frames)
            record.note_segment_seconds(time.perf_counter() - began)
    except Exception as exc:
        if not lease.held() and not isinstance(exc, EncodeAbandoned | TryLater):
            # An encoder that lost its lease has no say over the job.
            raise EncodeAbandoned(f"segment {segment} lost its lease while failing: {exc}") from exc
        raise
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(redis.RedisError):
            record.end_encode_attempt(part)
        lease.release()
    return True


def _encode(record: JobRecord, spec: JobSpec, settings: Settings, store: FrameStore,
            segment: int, options: RenderOptions, codec: str, target: Path, lease: EncodeLease,
            priority: int | None) -> bytes:
    """Encode the segment's frames with ``codec`` into ``target``; return its bytes (the file
    removed: the store has them from here, the disk need not hold them twice)."""
    frames = spec.segment_range(segment)
    waiter = FrameWaiter(record, store, frames.stop, lease.check, stall_after=None,
                         first=frames.start)
    stored = StoredFrames(store, record.job_id, frames.stop, wait=waiter,
                          max_pixels=settings.max_frame_pixels, first=frames.start)
    # A segment's frames count once it is kept (finish_segment); meanwhile only note progress.
    reporter = progress_reporter(record, lambda n: record.note_encoding())
    broker_url = settings.broker_url or ""
    # Priority 0 is served first: nothing can be waiting ahead of it.
    if priority and broker_url.startswith(REDIS_SCHEMES):
        reporter = yielding_reporter(reporter, record, redis_client(broker_url),
                                     settings.encode_queue, segment, priority, len(frames))
    result = encode_frames(stored, target, options, reporter, record.job_id, lease.generation,
                           before_publish=lease.check)
    if result.encoder != codec:  # pvio fell back from NVENC: the segments would not join
        raise EncodeIncomplete(f"segment {segment} fell back from {codec} to {result.encoder}; "
                               "see the encode worker's log, or submit with video_mode='cpu'")
    record.add_seconds({"encode": result.encode_seconds})
    data = target.read_bytes()
    target.unlink()
    return data


def segment_cache_name(cache: FrameCache, spec: JobSpec, codec: str, store: FrameStore,
                       job_id: str, frames: range) -> str | None:
    """The frame-cache entry name of a segment of these ``frames`` (all stored), encoded with
    ``codec`` as the job asks; None when a frame is missing. Named by what the encoder reads:
    a digest of each packed frame (the same pixels always pack into the same bytes) and every
    setting that changes the encoded bytes. So a segment is reused exactly when its frames and
    encoding are those of one encoded before, whatever job or key made them."""
    payloads = store.get_many(job_id, list(frames))
    if any(payload is None for payload in payloads):
        return None
    options = spec.options
    digests = b"".join(hashlib.blake2b(payload, digest_size=32).digest()  # type: ignore[arg-type]
                       for payload in payloads)
    material = wire.packb([SEGMENT_FORMAT_VERSION, encoder_version(), codec,
                           format_of(spec.output), options.fps, options.video_quality,
                           options.video_preset, options.video_extra_ffmpeg_params, digests])
    return cache.name("segment", material)


def _temp_prefix(job_id: str, what: str) -> str:
    """The name every temporary directory of ``job_id``'s ``what`` (``s<k>``: a segment's
    encode; ``join``) starts with, in this machine's temporary directory."""
    return f"celery-animate-{job_id}-{what}-"


def _discard_stale_workdirs(prefix: str, keep: Path) -> None:
    """Delete what earlier attempts at the same work left on this machine (a killed encoder's
    temporary directory): the caller holds the lease for that work, so none of them runs."""
    for stale in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        if stale != keep and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def encode_segment(record: JobRecord, spec: JobSpec, settings: Settings, store: FrameStore,
                   segment: int, priority: int | None, cache: FrameCache | None = None) -> dict:
    """The work of one segment's task: encode ``segment`` once its frames are rendered, then drop
    them. Raises :class:`TryLater` (not rendered yet, or it gave way to another job),
    :class:`EncodeAbandoned` (the job ended, or another encoder took over), and
    :class:`InvalidArgument` for a segment the job does not have."""
    if type(segment) is not int or not 0 <= segment < spec.n_segments:
        raise InvalidArgument(f"segment {segment!r} does not exist: the job has {spec.n_segments}")
    if record.finished_segments(spec.n_segments)[segment]:
        return {"skipped": f"segment {segment} is encoded"}
    if not encode_one_segment(record, spec, settings, store, segment, when_rendered=True,
                              priority=priority, cache=cache):
        return {"skipped": f"another encoder has segment {segment}"}
    return {"segment": segment}


def encode_segmented(record: JobRecord, spec: JobSpec, settings: Settings, store: FrameStore,
                     lease: EncodeLease, cache: FrameCache | None = None) -> dict:
    """The chord's callback for a segmented job, holding the job's lease: every frame is rendered.
    Encode the segments nobody encoded, wait for those being encoded, read them all back from the
    frame store, join, publish. A cache job's video that its render chunks found kept is
    published instead, and one they did not find is kept (:mod:`celery_animate.job.kept_video`).
    Raises :class:`EncodeIncomplete` (which fails the job) when a segment is missing from the
    store or is not what its encoder stored (see :func:`fetch_segments`), or a kept video's
    copy is (see :func:`publish_kept`)."""
    output = output_path(spec.output, settings)
    kept = kept_video.noted_outcome(record, spec, cache)
    if kept is not None and kept.found:
        lifecycle.discard_stale_attempts(output, record.job_id, lease.generation)
        result = publish_kept(record, spec, settings, store, lease, cache, kept)  # type: ignore[arg-type]
        lifecycle.end_job(record, result, lifecycle.Cleaner(store, settings))
        return {"output": result.output, "frames": result.n_frames, "encoder": result.encoder,
                "segments": 0}
    deadline = time.monotonic() + JOIN_WAIT_SECONDS
    for segment, finished in enumerate(record.finished_segments(spec.n_segments)):
        if finished or encode_one_segment(record, spec, settings, store, segment,
                                          when_rendered=False, cache=cache):
            continue
        # Another encoder is on it: most often the last segment, which the chord's callback
        # overtakes when there are two or more encode processes, and which has a fraction of a
        # second left. Wait a moment, then give the process back and look again soon. (Retrying
        # after 2 s, a 32-process fleet's 9 s job waited 2 s for a segment encoded in 0.1 s.)
        if not _finished_by(record, segment, deadline):
            raise TryLater(JOIN_POLL_SECONDS, f"another encoder is finishing segment {segment}")
    lifecycle.discard_stale_attempts(output, record.job_id, lease.generation)
    prefix = _temp_prefix(record.job_id, "join")
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        _discard_stale_workdirs(prefix, keep=workdir)
        segments, listed = fetch_segments(record.job_id, spec, store, workdir, output.suffix)
        codec = record.field("codec") or LIBX264
        result = publish_segments(segments, output, spec.options, codec, record.job_id,
                                  lease.generation, before_publish=lease.commit,
                                  on_joined=keeper(cache, kept, codec, spec.options.fps),
                                  listed=listed)
        result = publish_more(record, spec, settings, store, lease, result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    record.add_seconds({"join": result.encode_seconds})
    record.set_stat("encoder_peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    lifecycle.end_job(record, result, lifecycle.Cleaner(store, settings))
    return {"output": result.output, "frames": result.n_frames, "encoder": result.encoder,
            "segments": spec.n_segments}


def fetch_segments(job_id: str, spec: JobSpec, store: FrameStore, workdir: Path,
                   suffix: str) -> tuple[list[Path], list[Packets]]:
    """Write every encoded segment of the job from ``store`` into ``workdir`` (files named
    ``<k>`` + ``suffix``), one at a time, and return their paths in order, with the packets of
    each (so the join need not list them again), once each is checked: a video ffmpeg can read
    whose frame count is its segment's. Raises :class:`EncodeIncomplete`
    naming the segment when one is not stored (expired after ``CELERY_ANIMATE_FRAME_TTL``,
    evicted by Redis, or kept beside the output by an older version), larger than the store
    keeps, unreadable, or of another length; ``OSError`` when the local disk fails."""
    paths = []
    for k in range(spec.n_segments):
        data = store.get_segment(job_id, k)
        if data is None:
            raise EncodeIncomplete(
                f"segment {k} of job {job_id} was encoded but is not in the frame store (it "
                "expired after CELERY_ANIMATE_FRAME_TTL, Redis evicted it, or an encode worker "
                "of an older version kept it beside the output): submit the job again")
        path = workdir / f"{k:05d}{suffix}"
        path.write_bytes(data)
        del data  # one segment in memory at a time
        paths.append(path)

    def check(k: int) -> Packets:
        try:
            listed = packets(paths[k])
            found = len(listed.pts)
        except EncodeIncomplete as exc:
            raise EncodeIncomplete(f"segment {k} of job {job_id} read back from the frame store "
                                   f"is not a readable video ({exc}): submit the job again") from exc
        expected = len(spec.segment_range(k))
        if found != expected:
            raise EncodeIncomplete(f"segment {k} of job {job_id} read back from the frame store has "
                                   f"{found} frames, not {expected}: submit the job again")
        return listed

    with ThreadPoolExecutor(max_workers=4) as pool:  # each listing mostly waits for its ffmpeg
        return paths, list(pool.map(check, range(spec.n_segments)))


def _finished_by(record: JobRecord, segment: int, deadline: float) -> bool:
    """Whether ``segment`` is encoded and kept by ``deadline`` (``time.monotonic()``), asking every
    :data:`JOIN_WAIT_STEP` seconds."""
    while not record.finished_segments(segment + 1)[segment]:
        if time.monotonic() >= deadline:
            return False
        time.sleep(JOIN_WAIT_STEP)
    return True
