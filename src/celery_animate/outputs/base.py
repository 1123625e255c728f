"""The interface every output backend implements."""

from __future__ import annotations

import abc
from pathlib import Path


class Output(abc.ABC):
    """One job's output: a temporary local file to encode into, then publishing it.

    ``location`` is what the job's result names (a path, or the object's URL).
    """

    location: str

    @abc.abstractmethod
    def temporary(self, job_id: str, generation: int) -> Path:
        """A fresh local file for one encode attempt (its directory created), named so that
        :func:`celery_animate.paths.remove_partials` finds it again after a crash."""

    @abc.abstractmethod
    def publish(self, tmp: Path) -> int:
        """Put the complete, flushed file ``tmp`` in place, whole or not at all; return the
        video's size in bytes. ``tmp`` is gone afterwards, also when this raises."""

