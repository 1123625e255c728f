"""Every setting celery-animate reads, in one place.

Settings come from environment variables so that the same code runs on a
laptop, in a container and in a worker started by ``celery -A celery_animate``.
``Settings.from_env()`` is the only reader of ``os.environ`` in the package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from celery_animate.errors import ConfigurationError

#: Frame-store setting meaning "the Redis that holds job state".
REDIS_FRAME_STORE = "redis"
#: Default frames per encode segment on a configured cluster and on the embedded one.
CLUSTER_SEGMENT_FRAMES, EMBEDDED_SEGMENT_FRAMES = 60, 3600
#: The environment variables an object-store output reads, in their standard names (S3,
#: Google Cloud Storage, Azure): credentials, endpoint, region.
OBJECT_STORE_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_SKIP_SIGNATURE",
    "GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_CLIENT_ID",
    "AZURE_STORAGE_CLIENT_SECRET", "AZURE_STORAGE_TENANT_ID", "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN", "AZURE_STORAGE_USE_EMULATOR",
)


@dataclass(frozen=True)
class Settings:
    """Resolved configuration.

    ``broker_url`` is ``None`` when nothing is configured; callers then start
    the embedded cluster. ``result_backend`` defaults to the broker and must be
    a Redis URL: job state and progress counters live there.
    """

    broker_url: str | None = None
    result_backend: str | None = None
    render_queue: str = "render"
    encode_queue: str = "gpu"
    #: ``"redis"`` (the result backend's Redis), a ``redis://`` URL, or ``file:///dir``.
    frame_store: str = REDIS_FRAME_STORE
    #: ``file:///dir`` that frames and segments go to once a ``file:///`` frame store is full.
    frame_spill: str | None = None
    #: Seconds a frame or staged chunk survives if its job never finishes.
    frame_ttl: int = 24 * 3600
    #: Seconds a finished job's record (state, result, error) is kept.
    job_ttl: int = 7 * 24 * 3600
    #: Seconds after which a task taken by a worker that vanished (killed, machine lost)
    #: is delivered again. Longer than any one chunk or encode should take.
    visibility_timeout: int = 300
    #: Import paths (``module:Class``) whose ``setup()`` each worker process runs at start.
    prewarm: tuple[str, ...] = ()
    #: Module prefixes workers may import animators from; empty means any.
    allowed_animators: tuple[str, ...] = ()
    #: Where outputs may be written: a directory, a URL prefix (``s3://renders/out/``), or a
    #: comma-separated list of them (see :attr:`output_roots`). Relative output names resolve
    #: against the first. None: anywhere this process can write.
    output_root: str | None = None
    #: Local directory where an encode worker keeps a video for an object-store output until it
    #: is uploaded (and the segments of a segmented one). None: ``celery-animate-staging`` in
    #: the system's temporary directory.
    staging_dir: str | None = None
    #: The object-store credentials and endpoints of this process's environment, as
    #: ``(variable, value)`` pairs of :data:`OBJECT_STORE_VARIABLES` that are set. Only these
    #: reach an object store: never anything from a job or the broker.
    object_store_env: tuple[tuple[str, str], ...] = ()
    #: Module whose ``beat_schedule`` dict Celery beat runs (e.g. ``config.beat_schedule``).
    beat_schedule: str | None = None
    #: Deliveries of one render chunk or encode (its process died each time) before the job fails.
    max_deliveries: int = 3
    #: Seconds a rendering or encoding job may make no progress before the watchdog fails it.
    stall_timeout: int = 600
    #: Automatic blitting (redraw only what update() changed); False draws every frame in full.
    auto_blit: bool = True
    #: Largest frame, in pixels (width x height after padding), a worker renders or encodes.
    max_frame_pixels: int = 7680 * 4320
    #: Seconds a Redis command may take before it fails (connecting, reading, writing).
    redis_timeout: int = 30
    #: Frames per encode segment: a longer job is encoded in segments, several at once, then
    #: joined without re-encoding. A job of at most this many frames is one segment. Render
    #: chunks hold at most half of it, so the window below bounds what chunks store. None: the
    #: default for the cluster (see :attr:`segment_length`).
    segment_frames: int | None = None
    #: Frames of a segmented job that may wait in the frame store, counted from the first frame
    #: of the first segment not yet encoded (at least one segment); render tasks beyond wait.
    #: Two segments let the next segment render while one encodes; for N encode processes to
    #: work on one job at once, make it N + 1 segments.
    window_frames: int = 120
    #: Whether workers answer Celery's remote control (inspect, ping, shutdown, ...).
    remote_control: bool = True
    #: True for the settings of an embedded cluster, whose workers are forked from this process.
    embedded: bool = False
    #: URL prefixes (http/https) workers may POST a job's end to; empty: webhooks are refused.
    webhook_allow: tuple[str, ...] = ()
    #: Key of the webhook's HMAC-SHA256 signature; a worker without one refuses to deliver.
    #: Kept out of the settings' repr, which logs and error messages may show.
    webhook_secret: str | None = field(default=None, repr=False)
    #: Seconds one webhook attempt may wait on the receiver (each socket operation).
    webhook_timeout: int = 10
    #: Whether jobs use the frame cache when their caller does not say (``cache=``).
    cache_default: bool = False
    #: The key workers derive cache keys from and seal cache entries with; a worker without one
    #: caches nothing. Workers that share it share a cache. Kept out of the repr.
    cache_secret: str | None = field(default=None, repr=False)
    #: Where the frame cache lives: ``None`` for beside the frames (the frame store's Redis, or a
    #: ``cache`` folder in its directory), else a ``redis://`` URL or ``file:///dir``.
    cache_store: str | None = None
    #: Bytes the frame cache may hold; the least recently used entries go first.
    cache_bytes: int = 2 * 2**30
    #: Days an entry nobody used stays in the cache.
    cache_days: int = 30
    #: Where renders without a configured cluster (the embedded one) keep their cache and its
    #: key. None: ``~/.cache/celery-animate``.
    cache_dir: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        broker = env.get("CELERY_BROKER_URL") or None
        return cls(
            broker_url=broker,
            result_backend=env.get("CELERY_RESULT_BACKEND") or broker,
            render_queue=env.get("CELERY_ANIMATE_RENDER_QUEUE", "render"),
            encode_queue=env.get("CELERY_ANIMATE_ENCODE_QUEUE", "gpu"),
            frame_store=env.get("CELERY_ANIMATE_FRAME_STORE", REDIS_FRAME_STORE),
            frame_spill=env.get("CELERY_ANIMATE_FRAME_SPILL") or None,
            frame_ttl=_int(env, "CELERY_ANIMATE_FRAME_TTL", 24 * 3600),
            job_ttl=_int(env, "CELERY_ANIMATE_JOB_TTL", 7 * 24 * 3600),
            visibility_timeout=_int(env, "CELERY_ANIMATE_VISIBILITY_TIMEOUT", 300),
            prewarm=_csv(env.get("CELERY_ANIMATE_PREWARM", "")),
            allowed_animators=_csv(env.get("CELERY_ANIMATE_ALLOWED_ANIMATORS", "")),
            output_root=env.get("CELERY_ANIMATE_OUTPUT_ROOT") or None,
            staging_dir=env.get("CELERY_ANIMATE_STAGING_DIR") or None,
            object_store_env=tuple((name, env[name]) for name in OBJECT_STORE_VARIABLES
                                   if env.get(name)),
            beat_schedule=env.get("CELERY_ANIMATE_BEAT_SCHEDULE") or None,
            max_deliveries=_int(env, "CELERY_ANIMATE_MAX_DELIVERIES", 3),
            stall_timeout=_int(env, "CELERY_ANIMATE_STALL_TIMEOUT", 600),
            max_frame_pixels=_int(env, "CELERY_ANIMATE_MAX_FRAME_PIXELS", 7680 * 4320),
            redis_timeout=_int(env, "CELERY_ANIMATE_REDIS_TIMEOUT", 30),
            segment_frames=_optional_int(env, "CELERY_ANIMATE_SEGMENT_FRAMES"),
            window_frames=_int(env, "CELERY_ANIMATE_WINDOW_FRAMES", 120),
            remote_control=_bool(env, "CELERY_ANIMATE_REMOTE_CONTROL", True),
            auto_blit=_bool(env, "CELERY_ANIMATE_AUTO_BLIT", True),
            webhook_allow=_csv(env.get("CELERY_ANIMATE_WEBHOOK_ALLOW", "")),
            webhook_secret=env.get("CELERY_ANIMATE_WEBHOOK_SECRET") or None,
            webhook_timeout=_int(env, "CELERY_ANIMATE_WEBHOOK_TIMEOUT", 10),
            cache_default=_bool(env, "CELERY_ANIMATE_CACHE", False),
            cache_secret=env.get("CELERY_ANIMATE_CACHE_SECRET") or None,
            cache_store=env.get("CELERY_ANIMATE_CACHE_STORE") or None,
            cache_bytes=_int(env, "CELERY_ANIMATE_CACHE_BYTES", 2 * 2**30),
            cache_days=_int(env, "CELERY_ANIMATE_CACHE_DAYS", 30),
            cache_dir=env.get("CELERY_ANIMATE_CACHE_DIR") or None,
        )

    @property
    def output_roots(self) -> tuple[str, ...]:
        """The roots of :attr:`output_root`, in order (paths or URL prefixes); () when unset."""
        return _csv(self.output_root or "")

    @property
    def restore_interval(self) -> int:
        """Seconds between a worker's looks for messages a vanished worker took that have waited
        out :attr:`visibility_timeout`: a quarter of it, from 1 to 10."""
        return max(1, min(10, self.visibility_timeout // 4))

    @property
    def unacked_lock_seconds(self) -> int:
        """Seconds the lock a worker holds while it gives back a vanished worker's messages
        lives, if its holder dies (kombu's ``unacked_mutex_expire``): two looks' interval."""
        return 2 * self.restore_interval

    @property
    def segment_length(self) -> int:
        """Frames per encode segment: ``segment_frames`` if set, else 60 on a configured cluster
        (many encoders, a bounded frame store) and 3600 on the embedded one, whose one encoder
        gains nothing from segments: there a job of up to two minutes at 30 fps is encoded in one
        pass, into the same bytes as parallel_animate's."""
        if self.segment_frames is not None:
            return self.segment_frames
        return EMBEDDED_SEGMENT_FRAMES if self.embedded else CLUSTER_SEGMENT_FRAMES

    @property
    def configured(self) -> bool:
        """True when a broker is set, i.e. an external cluster is meant to be used."""
        return self.broker_url is not None

    def with_broker(self, url: str) -> Settings:
        """The same settings pointed at another Redis for broker and results."""
        return replace(self, broker_url=url, result_backend=url)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _optional_int(env, name: str) -> int | None:
    return _int(env, name, 0) if env.get(name) else None


def _int(env, name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 1:
        raise ConfigurationError(f"{name} must be a positive whole number, got {raw!r}")
    return value


def _bool(env, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")
