"""Frames as values: their padded size, and their packed form in the frame store.

A frame is an ``(H, W, 3)`` uint8 array (grabbed from the Agg canvas by
:mod:`celery_animate.render.grab`). Codecs want dimensions that are multiples
of 16 (imageio would otherwise *rescale* them); frames are padded with their
edge pixels instead, so every source pixel reaches the video unchanged.
This module imports neither matplotlib nor an imaging library: a web app that
only enqueues and reads posters loads neither.
"""

from __future__ import annotations

import numbers
from typing import Any

import msgpack
import numpy as np
import zstandard

from celery_animate.errors import FrameTooLarge, InvalidArgument, InvalidFrame

#: Highest dpi a job may ask for; frames are also bounded in pixels by each worker's setting.
MAX_DPI = 1200

#: imageio's ffmpeg writer rescales frames whose sides are not multiples of this.
MACRO_BLOCK = 16

# zstd level 1, measured on 640x480 wave frames: 45:1 in 0.32 ms, back in 0.13 ms
# (zlib level 1: 32:1 in 2.0 ms and 1.7 ms; lz4: 31:1, 0.20 ms and 0.37 ms).
_CODEC = "zstd"
_compressor = zstandard.ZstdCompressor(level=1)
_decompressor = zstandard.ZstdDecompressor()


def padded_shape(height: int, width: int) -> tuple[int, int]:
    """The frame size the video will have: each side rounded up to a multiple of 16."""
    return -(-height // MACRO_BLOCK) * MACRO_BLOCK, -(-width // MACRO_BLOCK) * MACRO_BLOCK


def check_dpi(savefig_params: dict[str, Any]) -> None:
    """Raise ``InvalidArgument`` unless ``savefig_params["dpi"]`` is absent, ``"figure"`` or 1..MAX_DPI."""
    dpi = savefig_params.get("dpi")
    if dpi is None or dpi == "figure":
        return
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not 0 < dpi <= MAX_DPI:
        raise InvalidArgument(f"savefig_params['dpi'] must be a number from 1 to {MAX_DPI}, got {dpi!r}")


def pack_frame(frame: np.ndarray) -> bytes:
    """Compress a contiguous frame into one msgpack message: ``[height, width, "zstd", data]``."""
    height, width, _ = frame.shape
    return msgpack.packb([height, width, _CODEC, _compressor.compress(frame.data)])


def check_frame_size(width: int, height: int, max_pixels: int, where: str) -> None:
    """Raise :class:`FrameTooLarge` if a ``width`` x ``height`` frame exceeds ``max_pixels``."""
    if width * height > max_pixels:
        raise FrameTooLarge(
            f"{where} is {width}x{height} pixels, more than this worker's limit of {max_pixels} "
            "(CELERY_ANIMATE_MAX_FRAME_PIXELS): make the figure or its dpi smaller"
        )


def unpack_frame(payload: bytes, max_pixels: int = 7680 * 4320) -> np.ndarray:
    """Inverse of :func:`pack_frame`.

    The payload may come from anyone who can write to the frame store, so its
    stated size is checked against ``max_pixels`` and against the size the
    compressed data declares before anything is allocated. Raises
    :class:`InvalidFrame` for a payload it cannot read.
    """
    try:
        height, width, codec, data = msgpack.unpackb(payload, max_bin_len=len(payload),
                                                      max_array_len=4, max_map_len=0,
                                                      max_str_len=16)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise InvalidFrame(f"a stored frame cannot be read: {exc}") from None
    if codec != _CODEC:
        raise InvalidFrame(f"frame compressed with {codec!r}; this celery-animate reads {_CODEC!r}")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in (height, width)) \
            or not isinstance(data, bytes):
        raise InvalidFrame("a stored frame has no valid size")
    check_frame_size(width, height, max_pixels, "a stored frame")
    expected = height * width * 3
    try:
        declared = zstandard.frame_content_size(data)
    except zstandard.ZstdError as exc:
        raise InvalidFrame(f"a stored frame's data is not zstd: {exc}") from None
    if declared != expected:
        raise InvalidFrame(f"a stored {width}x{height} frame declares {declared} bytes of pixels, "
                           f"not {expected}")
    try:
        raw = _decompressor.decompress(data, max_output_size=expected)
    except zstandard.ZstdError as exc:
        raise InvalidFrame(f"a stored frame's data is corrupt: {exc}") from None
    if len(raw) != expected:
        raise InvalidFrame(f"a stored frame holds {len(raw)} bytes of pixels, not {expected}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)


#: A poster frame's longest side in pixels, and the most bytes a client accepts for one.
POSTER_SIDE = 320
POSTER_MAX_BYTES = 1 << 20
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def checked_poster(data: bytes | None) -> bytes | None:
    """``data`` if it looks like a poster PNG (signature, at most POSTER_MAX_BYTES), else None."""
    if data is None or len(data) > POSTER_MAX_BYTES or not data.startswith(_PNG_SIGNATURE):
        return None
    return data


#: The most bytes one still (a full-size PNG frame) may have.
STILL_MAX_BYTES = 64 * 2**20


def checked_still(data: bytes | None) -> bytes | None:
    """``data`` if it looks like a still PNG (signature, at most STILL_MAX_BYTES), else None."""
    if data is None or len(data) > STILL_MAX_BYTES or not data.startswith(_PNG_SIGNATURE):
        return None
    return data
