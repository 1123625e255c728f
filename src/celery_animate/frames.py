"""Frames: grabbing RGB pixels from a figure, and packing them for the frame store.

A frame is an ``(H, W, 3)`` uint8 array read straight from the Agg canvas.
Codecs want dimensions that are multiples of 16 (imageio would otherwise
*rescale* them); we pad with the edge pixels instead, so every source pixel
reaches the video unchanged.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgpack
import numpy as np
from matplotlib.figure import Figure

#: imageio's ffmpeg writer rescales frames whose sides are not multiples of this.
MACRO_BLOCK = 16

#: zlib level 1: on plot frames (large flat areas) it compresses ~30:1 in ~2 ms.
_ZLIB_LEVEL = 1


class FigureSizeChanged(RuntimeError):
    """The figure's pixel size changed between frames; a video needs one size."""


def padded_shape(height: int, width: int) -> tuple[int, int]:
    """The frame size the video will have: each side rounded up to a multiple of 16."""
    return -(-height // MACRO_BLOCK) * MACRO_BLOCK, -(-width // MACRO_BLOCK) * MACRO_BLOCK


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
    if (out_h, out_w) == (height, width):
        return np.ascontiguousarray(rgba[:, :, :3])
    return np.pad(rgba[:, :, :3], ((0, out_h - height), (0, out_w - width), (0, 0)), mode="edge")


def pack_frame(frame: np.ndarray) -> bytes:
    """Compress a frame into one msgpack message: ``[height, width, zlib(rgb)]``."""
    height, width, _ = frame.shape
    return msgpack.packb([height, width, zlib.compress(frame.data, _ZLIB_LEVEL)])


def unpack_frame(payload: bytes) -> np.ndarray:
    """Inverse of :func:`pack_frame`."""
    height, width, data = msgpack.unpackb(payload)
    return np.frombuffer(zlib.decompress(data), dtype=np.uint8).reshape(height, width, 3)
