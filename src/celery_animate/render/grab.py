"""Reading a figure's pixels: the raster resolution, the RGB grab, and the poster thumbnail."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from celery_animate.frames import POSTER_SIDE, padded_shape


def apply_savefig_params(fig: Figure, savefig_params: dict[str, Any] | None) -> None:
    """Honour ``dpi`` (the raster resolution); other savefig options do not apply to a buffer grab."""
    dpi = (savefig_params or {}).get("dpi")
    if dpi is not None and dpi != "figure" and fig.get_dpi() != dpi:
        fig.set_dpi(dpi)


def grab_rgb(fig: Figure, *, draw: bool = True) -> np.ndarray:
    """Return the figure as a padded, contiguous ``(H, W, 3)`` uint8 array.

    With ``draw=False`` the canvas is read as it is (the caller has drawn it,
    e.g. by blitting).
    """
    if draw:
        fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    height, width = rgba.shape[:2]
    out_h, out_w = padded_shape(height, width)
    rgb = np.empty((out_h, out_w, 3), dtype=np.uint8)
    # One strided copy per channel: about 3x faster than copying the (H, W, 3) slice at once
    # (8 ms against 22-33 ms for 2400x1808 here).
    for channel in range(3):
        rgb[:height, :width, channel] = rgba[:, :, channel]
    if out_w > width:  # pad with the edge pixels, never rescale
        rgb[:height, width:] = rgb[:height, width - 1:width]
    if out_h > height:
        rgb[height:] = rgb[height - 1:height]
    return rgb


def poster_png(frame: np.ndarray, side: int = POSTER_SIDE) -> bytes:
    """A small PNG of ``frame`` (RGB), at most ``side`` pixels on its longest side."""
    image = Image.fromarray(frame)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def still_png(frame: np.ndarray, width: int, height: int) -> bytes:
    """A full-size PNG of ``frame`` (RGB, padded) cut back to the figure's ``width`` x ``height``."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame[:height, :width])).save(out, format="PNG",
                                                                        compress_level=6)
    return out.getvalue()
