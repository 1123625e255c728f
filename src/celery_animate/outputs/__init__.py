"""Where a finished video goes: a local path or an object-store URL, behind one small interface.

:func:`open_output` gives the :class:`Output` for what
:func:`celery_animate.paths.output_path` resolved; the encoder fills the
output's temporary file and then publishes it, only after the job's lease is
committed. A local output is renamed into place; an object-store output
(obstore: S3, GCS, Azure) is uploaded in one request, or as a multipart upload
completed only at its end, so its URL never shows a partial video.
"""

from pathlib import Path

from celery_animate.outputs.base import Output
from celery_animate.outputs.local import LocalOutput, fsync_path
from celery_animate.outputs.object_store import ObjectOutput, presigned_url
from celery_animate.paths import StagedOutput

__all__ = ["Output", "fsync_path", "open_output", "presigned_url"]


def open_output(target: Path) -> Output:
    """The backend for ``target`` as :func:`celery_animate.paths.output_path` resolved it: an
    object store for a :class:`~celery_animate.paths.StagedOutput`, else the local path."""
    if isinstance(target, StagedOutput) and getattr(target, "url", None) is not None:
        return ObjectOutput(target)
    return LocalOutput(Path(target))
