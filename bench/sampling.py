"""Sampling while a benchmark job runs: a thread that measures something every few milliseconds."""

from __future__ import annotations

import threading
from typing import Self


class PeakSampler:
    """Calls :meth:`sample` every ``interval`` seconds from a thread while the ``with`` block
    runs; subclasses keep their peaks in it."""

    def __init__(self, interval: float):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
