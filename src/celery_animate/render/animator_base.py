"""The contract a worker needs from an animation: ``setup()`` builds a figure, ``update()`` changes it.

:class:`AnimatorBase` is the bottom of the package: rendering code depends on
it, never on :class:`celery_animate.Animator`, whose ``make_video`` and
``submit`` sit on top of everything else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from celery_animate.errors import InvalidAnimator


class AnimatorBase(ABC):
    """A matplotlib animation rendered frame by frame, possibly on many processes.

    Each process calls ``setup()`` once and then ``update()`` for every frame
    it renders, on the same figure.
    """

    @abstractmethod
    def setup(self) -> Figure:
        """Build the figure and its artists, keep what ``update()`` needs on ``self``, return the figure.

        Called once per worker process (and once in the caller for
        ``num_workers=1``); it takes no arguments besides ``self``.
        """

    @abstractmethod
    def update(self, frame_idx: int, params: Any) -> None:
        """Change the figure for frame ``frame_idx`` using ``params`` (that frame's entry)."""

    def animated_artists(self) -> Iterable[Artist]:
        """The artists ``update()`` changes, to turn on blitting; none by default.

        When this returns artists, each worker draws everything else once into
        a background and per frame redraws only these, drawn *above* all
        static artists (in their z-order among themselves). Frames then match
        a full redraw wherever the animated artists sit on top of the rest.
        Changing a static artist in ``update()`` is allowed: it triggers a
        full redraw of the background for that frame.
        """
        return ()

    def cache_key(self) -> Any:
        """What else the frames depend on, for the frame cache (``cache=True``); None by default.

        The cache key covers this class's module source, the instance's attributes, each
        frame's params, the pixel options, matplotlib's version and rcParams. When ``update()``
        also reads something the key cannot see (a data file, a global, code in another
        module), return a value that changes with it: a file's modification time or hash, a
        version string. Any value msgpack can carry (str, bytes, numbers, lists, dicts). It is
        called before ``setup()`` as well as after, so it must not depend on what ``setup()``
        builds.
        """
        return None

    def setup_figure(self) -> Figure:
        """Run ``setup()`` and check what it returned; give the figure a raster canvas if it has none.

        Raises :class:`InvalidAnimator` (a ``TypeError``) when ``setup()`` does not return a Figure.
        """
        fig = self.setup()
        if not isinstance(fig, Figure):
            raise InvalidAnimator(
                f"{type(self).__qualname__}.setup() must return the matplotlib Figure it built, "
                f"but returned {type(fig).__qualname__}"
            )
        if not isinstance(fig.canvas, FigureCanvasAgg):
            # A bare Figure() has no raster canvas; frames are read from Agg's buffer.
            FigureCanvasAgg(fig)
        return fig
