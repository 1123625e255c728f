"""Client-side progress bars, fed by the counters workers keep in the job record.

In a terminal they are tqdm's text bars; in a Jupyter kernel, tqdm's widget bars when
ipywidgets is installed, else the text bars (tqdm.auto would warn that ipywidgets is missing).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Any

from tqdm.std import tqdm

from celery_animate.client.render_job import RenderJob
from celery_animate.options import RenderResult
from celery_animate.states import ENCODING


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's kernel app, not a terminal IPython)."""
    ipython = sys.modules.get("IPython")  # imported by every kernel; never imported here
    try:
        shell = ipython.get_ipython() if ipython is not None else None
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # an IPython too old or too odd to tell: treat it as no notebook
        return False


def resolve_disable(disable_progress_bar: bool | None) -> bool:
    """``None`` shows bars when stderr is a terminal (tqdm's rule) and in a Jupyter kernel, whose
    stderr is not one but shows them."""
    if disable_progress_bar is None:
        return not (sys.stderr.isatty() or in_notebook())
    return bool(disable_progress_bar)


def progress_bar(**kwargs: Any) -> tqdm:
    """A tqdm bar with ``kwargs``: widgets in a Jupyter kernel that has ipywidgets, text elsewhere."""
    if not kwargs.get("disable") and in_notebook() and importlib.util.find_spec("ipywidgets"):
        from tqdm.notebook import tqdm as notebook_tqdm  # only here: it imports IPython's display

        return notebook_tqdm(**kwargs)
    return tqdm(**kwargs)


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
    render_bar = progress_bar(total=progress.total, desc="Rendering frames", unit="frame",
                              disable=disable, position=0)
    # Encoding starts while the last frames still render, so both bars may move at once.
    encode_bar: tqdm | None = None
    ended = job.end_signal()
    try:
        while True:
            render_bar.update(progress.rendered - render_bar.n)
            if encode_bar is None and (progress.encoded or progress.state == ENCODING):
                encode_bar = progress_bar(total=progress.total, desc="Encoding video", unit="frame",
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
