"""The frame cache of renders without a cluster: in this user's cache directory.

An embedded render with ``cache=True`` gives its forked workers a cache in
``CELERY_ANIMATE_CACHE_DIR`` (``~/.cache/celery-animate``), sealed with a
secret kept there (readable by this user only), so that the next run of the
same script finds what this one drew. On top of the workers' frames and
segments, the caller keeps each finished video under a key of every frame's
key and the encoding: a run that changed nothing takes its video from there
without starting a cluster at all.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from celery_animate import wire
from celery_animate.cache import FrameCache, open_frame_cache
from celery_animate.config import CLUSTER_SEGMENT_FRAMES, Settings
from celery_animate.encode.encoder import publish_bytes
from celery_animate.encode.pvio_adapter import encoder_version
from celery_animate.errors import EncodeIncomplete
from celery_animate.ids import new_job_id
from celery_animate.job.kept_video import pack_entry, unpack_entry, video_entry_name
from celery_animate.options import RenderOptions, RenderResult, animation_index
from celery_animate.params import resolved_frames
from celery_animate.render.animator_base import AnimatorBase
from celery_animate.render.cache_key import FrameKeys, rc_digest
from celery_animate.render.loading import animator_path, pack_attrs


def local_cache_settings(settings: Settings) -> Settings:
    """``settings`` for an embedded render that uses the cache: a cache secret and store in
    ``settings.cache_dir`` (unless set), and segments of the cluster's length, so that a
    segment whose frames did not change is not encoded again. Raises ``OSError`` when the
    directory cannot be made."""
    root = Path(settings.cache_dir or Path.home() / ".cache" / "celery-animate")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return replace(settings,
                   cache_secret=settings.cache_secret or _secret(root / "secret"),
                   cache_store=settings.cache_store or (root / "entries").as_uri(),
                   segment_frames=settings.segment_frames or CLUSTER_SEGMENT_FRAMES)


def _secret(path: Path) -> str:
    """The secret in ``path``, made (readable by this user only) the first time."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another run made it meanwhile
        return path.read_text().strip()
    value = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


@dataclass
class KeptVideo:
    """A finished video's entry in the cache: where it is, and what makes it."""

    cache: FrameCache
    name: str
    #: The job's ``(video position, params as workers read them)``, in order, and the cache
    #: entry name of each frame.
    frames: list[tuple[int, Any]]
    frame_names: list[str]

    @classmethod
    def find(cls, settings: Settings, animator: AnimatorBase, param_by_frame: Iterable[Any],
             n_frames: int | None, options: RenderOptions, output: str) -> KeptVideo | None:
        """The entry of the video these arguments make at ``output`` (whose extension gives the
        format), if they can be keyed here: params in a sequence (a generator is read once, by
        the submission), the animator's source found."""
        if not isinstance(param_by_frame, Sequence | np.ndarray):
            return None
        cache = open_frame_cache(settings)
        if cache is None:
            return None
        keys = FrameKeys.build(cache, animator, animator_path(animator), pack_attrs(animator),
                               options, rc_digest())
        if keys is None:
            return None
        # Params as workers will read them back from the wire, so the names match theirs.
        frames = [(position, wire.unpackb(wire.packb(params))) for position, params in
                  sorted(resolved_frames(param_by_frame, n_frames), key=lambda pair: pair[0])]
        names = [keys.frame(animation_index(options, position), params)
                 for position, params in frames]
        name = video_entry_name(cache, names, options, output, settings.segment_frames,
                                encoder_version())
        return cls(cache, name, frames, names)

    def publish(self, output: str) -> RenderResult | None:
        """Publish the kept video at ``output`` (a local path) as an encoder publishes a video (a
        flushed temporary file beside it, renamed into place) and return its result; None when
        it is not kept."""
        entry = self.cache.get(self.name)
        if entry is None:
            return None
        try:
            fields, data = unpack_entry(entry)
        except EncodeIncomplete:  # kept by another version: render it again
            return None
        publish_bytes(data, output, new_job_id(), 0, before_publish=lambda: None)
        return RenderResult(output=output, **fields, size_bytes=len(data), encode_seconds=0.0,
                            outputs=[output])

    def keep(self, result: RenderResult) -> None:
        """Keep the video ``result`` names (a local file) for the next identical render."""
        with contextlib.suppress(OSError):
            if Path(result.output).stat().st_size * 8 > self.cache.backend.max_bytes:
                return  # the cache would not keep it: do not read it
            self.cache.put(self.name, pack_entry(asdict(result), Path(result.output).read_bytes()))
