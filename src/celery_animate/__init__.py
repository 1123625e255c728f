"""celery-animate: render matplotlib animations to video on a Celery cluster.

``from celery_animate import Animator`` is a drop-in for ``parallel_animate``;
``celery -A celery_animate worker`` finds the Celery :data:`app` here.
"""

from .animator import Animator
from .celery_app import app, create_app
from .cluster import EmbeddedCluster
from .config import Settings
from .errors import CeleryAnimateError, ConfigurationError, JobCancelled, JobNotFound, RenderFailed
from .jobs import Progress, RenderJob, RenderResult
from .params import IndexedFrameParams

__version__ = "0.1.0"

__all__ = [
    "Animator",
    "CeleryAnimateError",
    "ConfigurationError",
    "EmbeddedCluster",
    "IndexedFrameParams",
    "JobCancelled",
    "JobNotFound",
    "Progress",
    "RenderFailed",
    "RenderJob",
    "RenderResult",
    "Settings",
    "app",
    "create_app",
]
