"""The wire format: msgpack with numpy arrays and tuples, the only serialisation used for data.

Frame parameters, animator attributes and frames all cross process and machine
boundaries through :func:`packb`/:func:`unpackb`; pickle is never used, so a
message can carry data but never code.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack
import numpy as np

from celery_animate.errors import InvalidArgument, UnpackableError

_EXT_NDARRAY = 1
_EXT_TUPLE = 2

#: Deepest nesting of lists, tuples and dicts that params and attributes may have.
MAX_DEPTH = 32
#: What the messages that carry them may add (a chunk's list of (index, params) pairs, ...).
_ENVELOPE_DEPTH = MAX_DEPTH + 4

_decoding = threading.local()


def nesting_depth(obj: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply ``obj``'s lists, tuples and dicts nest (a scalar is 0), without recursion.

    Stops and returns ``limit + 1`` as soon as the nesting goes beyond ``limit``.
    """
    deepest, stack = 0, [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, tuple, dict)):
            depth += 1
            if depth > limit:
                return depth
            deepest = max(deepest, depth)
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth) for item in items if isinstance(item, (list, tuple, dict)))
    return deepest


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("object arrays cannot be packed")
        array = np.ascontiguousarray(obj)
        header = msgpack.packb([array.dtype.str, list(array.shape)])
        return msgpack.ExtType(_EXT_NDARRAY, header + array.tobytes())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return msgpack.ExtType(_EXT_TUPLE, _pack(list(obj)))
    # strict_types sends subclasses here (OrderedDict, numpy float64 is handled above).
    for base in (dict, list, str, int, float):
        if isinstance(obj, base):
            return base(obj)
    raise TypeError(f"cannot pack {type(obj)!r}")


def _array(data: bytes) -> np.ndarray:
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(data))
    unpacker.feed(data)
    dtype, shape = unpacker.unpack()
    offset = unpacker.tell()
    if not isinstance(dtype, str) or not isinstance(shape, list) or len(shape) > MAX_DEPTH \
            or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise InvalidArgument("a packed array has no valid dtype and shape")
    kind = np.dtype(dtype)
    if kind.hasobject:
        raise InvalidArgument("a packed array has an object dtype")
    # frombuffer is read-only and shares the message; copy so user code may mutate it.
    return np.frombuffer(data, dtype=kind, offset=offset).reshape(shape).copy()


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_NDARRAY:
        return _array(data)
    if code == _EXT_TUPLE:
        # Each tuple is a message of its own, decoded by a nested call: bound that recursion.
        depth = getattr(_decoding, "depth", 0)
        if depth >= _ENVELOPE_DEPTH:
            raise InvalidArgument(f"packed data nests tuples deeper than {_ENVELOPE_DEPTH} levels")
        _decoding.depth = depth + 1
        try:
            return tuple(_unpack(data))
        finally:
            _decoding.depth = depth
    return msgpack.ExtType(code, data)


def _pack(obj: Any) -> bytes:
    # strict_types keeps tuples out of msgpack's list fast path so they round-trip.
    return msgpack.packb(obj, default=_default, use_bin_type=True, strict_types=True)


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def packb(obj: Any) -> bytes:
    """Serialise ``obj``.

    Raises ``TypeError`` for anything msgpack cannot carry and
    :class:`InvalidArgument` for nesting deeper than :data:`MAX_DEPTH`.
    """
    if nesting_depth(obj, _ENVELOPE_DEPTH) > _ENVELOPE_DEPTH:
        raise InvalidArgument(f"value nests more than {_ENVELOPE_DEPTH} levels deep")
    return _pack(obj)


def unpackb(data: bytes) -> Any:
    """Inverse of :func:`packb`, for data from anyone: raises :class:`InvalidArgument` for bytes
    that are not what :func:`packb` writes, or that nest deeper than it allows."""
    try:
        value = _unpack(data)
    except InvalidArgument:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.exceptions.StackError) as exc:
        raise InvalidArgument(f"packed data cannot be read: {type(exc).__name__}: {exc}") from None
    if nesting_depth(value, _ENVELOPE_DEPTH) > _ENVELOPE_DEPTH:
        raise InvalidArgument(f"packed data nests more than {_ENVELOPE_DEPTH} levels deep")
    return value


def check_packable(obj: Any, where: str) -> None:
    """Raise naming the first value in ``obj`` that cannot be packed: :class:`UnpackableError`
    for a type, :class:`InvalidArgument` for nesting deeper than :data:`MAX_DEPTH`."""
    if nesting_depth(obj) > MAX_DEPTH:
        raise InvalidArgument(f"{where} nest more than {MAX_DEPTH} levels deep (lists, tuples and "
                              "dicts inside each other); flatten them or use a numpy array")
    try:
        _pack(obj)
    except (TypeError, ValueError, OverflowError):
        path, value = _find_unpackable(obj, "value")
        raise UnpackableError(where, path or "value", value if path else obj) from None


def _find_unpackable(obj: Any, path: str) -> tuple[str, Any]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, (str, int, bytes)):
                return f"{path} key {key!r}", key
            found = _find_unpackable(value, f"{path}[{key!r}]")
            if found[0] != "":
                return found
        return "", None
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            found = _find_unpackable(value, f"{path}[{i}]")
            if found[0] != "":
                return found
        return "", None
    try:
        _pack(obj)
    except (TypeError, ValueError, OverflowError):
        return path, obj
    return "", None
