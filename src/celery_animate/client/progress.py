"""Client-side progress bars, fed by the counters workers keep in the job record."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm.auto import tqdm  # widgets in Jupyter, text in a terminal

from celery_animate.client.render_job import RenderJob
from celery_animate.options import RenderResult
from celery_animate.states import ENCODING


def resolve_disable(disable_progress_bar: bool | None) -> bool:
    """tqdm's rule: ``None`` means show bars only when stderr is a terminal."""
    if disable_progress_bar is None:
        return not sys.stderr.isatty()
    return bool(disable_progress_bar)


def follow(job: RenderJob, disable_progress_bar: bool | None = None, poll: float = 0.1,
           check: Callable[[], None] | None = None) -> RenderResult:
    """Show "Rendering frames" and "Encoding video" bars until ``job`` ends; return its result.

    ``check`` runs at every poll and may raise to give up (the embedded
    cluster uses it to notice that its worker died). Raises what
    :meth:`RenderJob.result` raises for an ended job (:class:`RenderFailed`,
    :class:`JobCancelled`).
    """
    disable = resolve_disable(disable_progress_bar)
    progress = job.progress()
    render_bar = tqdm(total=progress.total, desc="Rendering frames", unit="frame", disable=disable,
                      position=0)
    # Encoding starts while the last frames still render, so both bars may move at once.
    encode_bar: tqdm | None = None
    ended = job.end_signal()
    try:
        while True:
            render_bar.update(progress.rendered - render_bar.n)
            if encode_bar is None and (progress.encoded or progress.state == ENCODING):
                encode_bar = tqdm(total=progress.total, desc="Encoding video", unit="frame",
                                  disable=disable, position=1)
            if encode_bar is not None:
                encode_bar.update(progress.encoded - encode_bar.n)
            if progress.finished:
                break
            if check is not None:
                check()
            ended.sleep(poll)
            progress = job.progress()
    finally:
        ended.close()
        render_bar.close()
        if encode_bar is not None:
            encode_bar.close()
    return job.result()  # the job has ended: no need to wait again
