"""A job's record in Redis: its spec, its staged params, its progress counters and timings.

The record is one hash, ``celery_animate:job:<id>``; staged params are one
string per chunk beside it (every name comes from :mod:`celery_animate.keys`).
Anyone who knows the id and the Redis URL can read it: the process that
submitted the job, a later web request, the CLI. Changes of state and
deletions are not here: they belong to :mod:`celery_animate.job.lifecycle`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from typing import Any

import redis

from celery_animate import keys, wire
from celery_animate.errors import InvalidArgument, JobNotFound, ParamsExpired
from celery_animate.frames import checked_poster, checked_still
from celery_animate.ids import check_job_id
from celery_animate.job.spec import JobSpec
from celery_animate.keys import JOB_INDEX  # also imported from here by older code
from celery_animate.lua import run_script
from celery_animate.options import Progress
from celery_animate.stores.base import index_batches

#: Bytes of params, and chunks, staged in one pipelined round trip, at most.
STAGE_BATCH_BYTES, STAGE_BATCH_CHUNKS = 4 << 20, 1000


class ChunkStager:
    """Stages a job's chunks, numbered in the order added, a batch per round trip (with one SET
    per chunk, a job of 512 chunks sent its first task 142-158 ms after ``submit()`` began;
    batched, 80-108 ms).

    ``count`` is how many were added, staged or not (what a failed submission deletes);
    :meth:`flush` sends what is pending. Redis errors raise from :meth:`add` and :meth:`flush`.
    """

    def __init__(self, record: JobRecord, ttl: int):
        self.record, self.ttl = record, ttl
        self.count = 0
        self._pipe = record.client.pipeline(transaction=False)
        self._pending_bytes = 0
        #: A digest of every chunk staged, in order: the job's params, for finding an identical job.
        self.digest = hashlib.blake2b(digest_size=32)

    def add(self, frames: bytes) -> None:
        self.digest.update(hashlib.blake2b(frames, digest_size=32).digest())
        self._pipe.set(self.record.chunk_key(self.count), frames, ex=self.ttl)
        self.count += 1
        self._pending_bytes += len(frames)
        if self._pending_bytes >= STAGE_BATCH_BYTES or len(self._pipe) >= STAGE_BATCH_CHUNKS:
            self.flush()

    def flush(self) -> None:
        self._pipe.execute()
        self._pending_bytes = 0


class JobRecord:
    """Reads and updates one job's hash. Used by clients and workers alike.

    Raises :class:`~celery_animate.errors.InvalidArgument` for a ``job_id``
    that is not 32 lowercase hex digits.
    """

    def __init__(self, client: redis.Redis, job_id: str, ttl: int = 7 * 24 * 3600):
        self.client = client
        self.job_id = check_job_id(job_id)
        self.ttl = ttl
        self.key = keys.job(self.job_id)

    def not_found(self) -> JobNotFound:
        return JobNotFound(
            f"no record of job {self.job_id!r}: it was never submitted, its record expired, or "
            "Redis lost it (restarted without persistence, flushed, or evicted it under memory "
            "pressure); submit the job again")

    @property
    def ended_channel(self) -> str:
        """The pub/sub channel the job's terminal state is published on when it ends."""
        return keys.ended_channel(self.job_id)

    def end_signal(self) -> EndSignal:
        """Subscribe to the news of this job's end (see :class:`EndSignal`)."""
        return EndSignal(self.client, self.ended_channel)

    def chunk_key(self, chunk_no: int) -> str:
        return keys.chunk(self.job_id, chunk_no)

    # -- params, staged before the job exists -------------------------------------------
    def stage_chunk(self, chunk_no: int, frames: bytes, ttl: int) -> None:
        self.client.set(self.chunk_key(chunk_no), frames, ex=ttl)

    def stager(self, ttl: int) -> ChunkStager:
        """Stages chunks 0, 1, ... in pipelined batches (see :class:`ChunkStager`)."""
        return ChunkStager(self, ttl)

    def load_chunk(self, chunk_no: int, n_frames: int) -> list[tuple[int, Any]]:
        """The ``(frame_idx, params)`` pairs staged for a chunk, each index in ``0 .. n_frames-1``.

        Raises :class:`ParamsExpired` (a ``LookupError``) when they expired and :class:`InvalidArgument`
        when what is stored is not such a list.
        """
        data = self.client.get(self.chunk_key(chunk_no))
        if data is None:
            raise ParamsExpired(f"params of chunk {chunk_no} of job {self.job_id} have expired")
        pairs = wire.unpackb(data)
        if not isinstance(pairs, list) or not all(
                isinstance(pair, (list, tuple)) and len(pair) == 2 and type(pair[0]) is int
                and 0 <= pair[0] < n_frames for pair in pairs):
            raise InvalidArgument(f"the staged params of chunk {chunk_no} are not (frame index, "
                                  f"params) pairs with indices below {n_frames}")
        return [(index, params) for index, params in pairs]

    # -- reading --------------------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.client.exists(self.key))

    def spec(self) -> JobSpec:
        data = self.client.hget(self.key, "spec")
        if data is None:
            raise self.not_found()
        return JobSpec.unpack(data)

    def state(self) -> str | None:
        value = self.client.hget(self.key, "state")
        return value.decode() if value is not None else None

    def field(self, name: str) -> str | None:
        value = self.client.hget(self.key, name)
        return value.decode() if value is not None else None

    def progress(self) -> Progress:
        """State and counters; raises :class:`JobNotFound` when there is no record."""
        state, rendered, encoded, total = self.client.hmget(
            self.key, "state", "rendered", "encoded", "total"
        )
        if state is None:
            raise self.not_found()
        return Progress(state.decode(), int(rendered or 0), int(encoded or 0), int(total or 0))

    def ending(self) -> tuple[str, bytes | None, bytes | None]:
        """``(state, result json, error json)``; raises :class:`JobNotFound` when there is no record."""
        state, result, error = self.client.hmget(self.key, "state", "result", "error")
        if state is None:
            raise self.not_found()
        return state.decode(), result, error

    def stats(self) -> dict[str, float]:
        """Per-stage seconds (summed over workers) and other measurements of the job."""
        fields = self.client.hgetall(self.key)
        out = {key.decode()[5:]: float(value) for key, value in fields.items()
               if key.startswith(b"stat:")}
        if b"started" in fields:
            out["queue_wait"] = float(fields[b"started"]) - float(fields[b"created"])
        return out

    # -- counters workers keep ------------------------------------------------------------
    def _update(self, *triples: tuple[str, str, Any]) -> bool:
        """Apply ``(operation, field, value)`` updates if the record exists; False if it is gone."""
        args = [item for triple in triples for item in triple]
        return run_script(self.client, "update_existing", [self.key], args) == 1

    def add_encoded(self, n: int) -> bool:
        """Count ``n`` more frames encoded (and note the progress); False if the record is gone."""
        now = time.time()
        return self._update(("incr", "encoded", n), ("set", "progress_at", now), ("set", "encoded_at", now))

    def note_encoding(self) -> bool:
        """Note that an encoder made progress (a segment's frames count once it is finished)."""
        return self._update(("set", "encoded_at", time.time()))

    def note_segment_seconds(self, seconds: float) -> None:
        """Note how long the last segment finished took its encoder, in seconds."""
        self._update(("set", "segment_seconds", seconds))

    def segment_seconds(self) -> float | None:
        """Seconds the last segment finished took its encoder; None before one is finished."""
        value = self.client.hget(self.key, "segment_seconds")
        return float(value) if value is not None else None

    def seconds_since_encoding(self) -> float | None:
        """Seconds since an encoder last made progress; None if none has yet."""
        value = self.client.hget(self.key, "encoded_at")
        return time.time() - float(value) if value is not None else None

    # -- encode segments -------------------------------------------------------------------
    @property
    def segments_key(self) -> str:
        """A bitmap beside the hash: bit ``k`` is set once segment ``k`` is encoded and kept."""
        return keys.segments(self.job_id)

    def first_unfinished_segment(self) -> int:
        """The lowest segment not encoded yet (the segment count or more when all are)."""
        return int(self.client.bitpos(self.segments_key, 0))

    def finished_segments(self, n_segments: int) -> list[bool]:
        """For each of the job's ``n_segments`` segments, whether it is encoded and kept."""
        bits = self.client.get(self.segments_key) or b""
        return [k // 8 < len(bits) and bool(bits[k // 8] & (0x80 >> (k % 8))) for k in range(n_segments)]

    def finish_segment(self, segment: int, n_frames: int) -> bool:
        """Mark ``segment`` (of ``n_frames`` frames) encoded and count its frames, once; False if it
        already was or the record is gone."""
        if not self.exists() or self.client.setbit(self.segments_key, int(segment), 1):
            return False
        self.client.expire(self.segments_key, self.ttl)
        return self.add_encoded(n_frames)

    def count_yield(self, segment: int) -> int:
        """Count one more time segment ``segment``'s encode would give its process up to another
        job; return how many there were (0: no record; a field that is not a count, written by
        someone else, counts as more than any limit)."""
        try:
            return self._count(f"yields:{int(segment)}")
        except redis.ResponseError:  # not an integer
            return 2**31

    def claim_codec(self, codec: str) -> str | None:
        """Record ``codec`` as the job's encoder unless one is recorded; return the recorded one
        (None if the record is gone). Every segment of a video must use the same."""
        self._update(("setnx", "codec", codec))
        return self.field("codec")

    def set_once(self, field: str, value: str) -> str | None:
        """Set ``field`` to ``value`` unless it is set; return its value now (None if the record
        is gone: it is never recreated)."""
        self._update(("setnx", field, value))
        return self.field(field)

    def set_field(self, field: str, value: str) -> bool:
        """Set ``field`` to ``value`` if the record exists; False if it is gone."""
        return self._update(("set", field, value))

    def reset_encoded(self) -> None:
        self._update(("set", "encoded", 0))

    def count_delivery(self, chunk_no: int) -> int:
        """Count one more delivery of chunk ``chunk_no``; return how many there were (0: no record)."""
        return self._count(f"deliveries:{int(chunk_no)}")

    def _count(self, field: str) -> int:
        """Add one to counter ``field`` if the record exists; the new count (0: no record)."""
        return int(run_script(self.client, "count_existing", [self.key], [field]))

    def begin_encode_attempt(self, generation: int, part: str = "") -> int:
        """Note that encode lease ``generation`` starts encoding ``part`` (the video, or a segment);
        return how many earlier attempts at it died without ending (their process killed). Only
        the lease holder calls it."""
        by, deaths = f"encoding_by{part}", f"encoder_deaths{part}"
        if self.client.hget(self.key, by) is not None:
            self._update(("incr", deaths, 1))
        self._update(("set", by, generation))
        return int(self.client.hget(self.key, deaths) or 0)

    def end_encode_attempt(self, part: str = "") -> None:
        """The current encode attempt at ``part`` ended by itself (finished, stepped aside, failed)."""
        self.client.hdel(self.key, f"encoding_by{part}")

    def mark_sent(self, render_queue: str, encode_queue: str) -> None:
        """Note that every message of the job was sent, to these queues (see :meth:`sent_to`)."""
        self._update(("set", "sent_to", f"{render_queue} {encode_queue}"))

    def sent_to(self) -> tuple[str, str] | None:
        """``(render queue, encode queue)`` the job's messages were all sent to; None until they
        were (or when the field is not two names)."""
        names = (self.field("sent_to") or "").split(" ")
        return (names[0], names[1]) if len(names) == 2 else None

    def unfinished_chunks(self, n_chunks: int, n_frames: int) -> list[int]:
        """The chunks (of ``n_chunks``) that have not stored all their frames and whose params are
        still staged (nothing could render the others again). A chunk with some frames stored is
        compared with its params' length; one whose count is not an integer counts as finished."""
        unfinished = []
        for batch in index_batches(n_chunks, 1000):
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hmget(self.key, [f"chunk:{k}" for k in batch])
                for chunk_no in batch:
                    pipe.exists(self.chunk_key(chunk_no))
                stored, *staged = pipe.execute()
            for chunk_no, frames, is_staged in zip(batch, stored, staged, strict=True):
                if not is_staged:
                    continue
                if frames is None:
                    unfinished.append(chunk_no)
                    continue
                with contextlib.suppress(LookupError, ValueError):  # InvalidArgument is one
                    if int(frames) < len(self.load_chunk(chunk_no, n_frames)):
                        unfinished.append(chunk_no)
        return unfinished

    def count_recovery(self) -> int:
        """Count one more time the job's lost messages were sent again; return how many (0: no
        record)."""
        return self._count("recoveries")

    def mark_started(self) -> None:
        """Remember when the first chunk started (queue wait = that - created)."""
        self._update(("setnx", "started", time.time()))

    def add_seconds(self, seconds: dict[str, float]) -> None:
        """Add to the job's per-stage time counters (``stat:<stage>``, seconds summed over workers)."""
        self._update(*(("incrfloat", f"stat:{stage}", value) for stage, value in seconds.items()))

    def set_stat(self, name: str, value: float) -> None:
        self._update(("set", f"stat:{name}", value))

    def set_poster(self, png: bytes) -> None:
        """Keep the first frame's thumbnail with the job (see :func:`frames.poster_png`)."""
        self._update(("set", "poster", png))

    def set_still(self, position: int, png: bytes) -> None:
        """Keep the PNG still of the video's frame ``position`` until the job's end publishes it."""
        self._update(("set", f"still:{int(position)}", png))

    def still(self, position: int) -> bytes | None:
        """The still of frame ``position``; None when it is missing, too large or not a PNG."""
        return checked_still(self.client.hget(self.key, f"still:{int(position)}"))

    def poster(self) -> bytes | None:
        """The poster PNG once the first frame is rendered; None before, or if it is not a PNG."""
        return checked_poster(self.client.hget(self.key, "poster"))

    # -- the announcement of the job's end (job.announce) ------------------------------------
    def set_announcements(self, on_done: str | None, webhook: str | None) -> None:
        """Ask for the job's end to be announced: ``on_done`` is the stored form of the user's
        task (JSON, see :class:`celery_animate.announcement.OnDone`), ``webhook`` a URL; each is
        marked pending. Call it between the record's creation and the job's first message; the
        ``transition`` script lists a job with either field for announcing when it ends."""
        updates: list[tuple[str, str, Any]] = []
        if on_done is not None:
            updates += [("set", "on_done", on_done), ("set", "on_done_status", '{"state":"pending"}')]
        if webhook is not None:
            updates += [("set", "webhook", webhook), ("set", "webhook_status", '{"state":"pending"}')]
        if updates:
            self._update(*updates)

    def announcements(self) -> tuple[bytes | None, bytes | None]:
        """``(on_done, webhook)`` as stored (raw bytes: a stranger's word until checked)."""
        on_done, webhook = self.client.hmget(self.key, "on_done", "webhook")
        return on_done, webhook

    def set_announce_status(self, kind: str, status: dict[str, Any]) -> bool:
        """Record how announcing by ``kind`` (``"on_done"`` or ``"webhook"``) went; False if the
        record is gone. Never touches the job's state."""
        return self._update(("set", f"{kind}_status", json.dumps(status)))

    def announce_status(self, kind: str) -> dict[str, Any] | None:
        """How announcing by ``kind`` (``"on_done"`` or ``"webhook"``) went: ``{"state": "pending" |
        "sent" | "delivered" | "failed" | "refused", ...}``; None when the job asked for none (or
        what is stored is not such a dict)."""
        raw = self.client.hget(self.key, f"{kind}_status")
        try:
            status = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        return status if isinstance(status, dict) and isinstance(status.get("state"), str) else None


class EndSignal:
    """A subscription to one job's end, for a client that polls the job's record.

    :meth:`sleep` returns when the job ends (the ``transition`` script
    publishes it) or after ``seconds``, whichever comes first, so a waiting
    client learns of the end at once instead of up to a poll later. Subscribe
    before reading the state, and an end between the two is not missed. With
    Redis unreachable it is a plain sleep (the caller's reads of the record
    notice the blip). Close it, or use it as a context manager.
    """

    def __init__(self, client: redis.Redis, channel: str):
        self._pubsub: redis.client.PubSub | None = client.pubsub(ignore_subscribe_messages=True)
        try:
            self._pubsub.subscribe(channel)
        except redis.RedisError:
            self.close()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return early, with True, when the job ends."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self._pubsub is None:
                time.sleep(left)
                return False
            try:
                if self._pubsub.get_message(timeout=left) is not None:
                    return True
            except redis.RedisError:
                self.close()
        return False

    def close(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                self._pubsub.close()
            self._pubsub = None

    def __enter__(self) -> EndSignal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def recent_job_ids(client: redis.Redis, limit: int = 20) -> list[str]:
    """Ids of the most recently submitted jobs, newest first."""
    return [raw.decode() for raw in client.zrevrange(JOB_INDEX, 0, limit - 1)]
