"""The wire format: msgpack with numpy arrays and tuples, the only serialisation used for data.

Frame parameters, animator attributes and frames all cross process and machine
boundaries through :func:`packb`/:func:`unpackb`; pickle is never used, so a
message can carry data but never code.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from .errors import UnpackableError

_EXT_NDARRAY = 1
_EXT_TUPLE = 2


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
        return msgpack.ExtType(_EXT_TUPLE, packb(list(obj)))
    # strict_types sends subclasses here (OrderedDict, numpy float64 is handled above).
    for base in (dict, list, str, int, float):
        if isinstance(obj, base):
            return base(obj)
    raise TypeError(f"cannot pack {type(obj)!r}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_NDARRAY:
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(data)
        dtype, shape = unpacker.unpack()
        offset = unpacker.tell()
        # frombuffer is read-only and shares the message; copy so user code may mutate it.
        return np.frombuffer(data, dtype=np.dtype(dtype), offset=offset).reshape(shape).copy()
    if code == _EXT_TUPLE:
        return tuple(unpackb(data))
    return msgpack.ExtType(code, data)


def packb(obj: Any) -> bytes:
    """Serialise ``obj``; raises ``TypeError`` for anything msgpack cannot carry."""
    # strict_types keeps tuples out of msgpack's list fast path so they round-trip.
    return msgpack.packb(obj, default=_default, use_bin_type=True, strict_types=True)


def unpackb(data: bytes) -> Any:
    """Inverse of :func:`packb`."""
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def check_packable(obj: Any, where: str) -> None:
    """Raise :class:`UnpackableError` naming the first value in ``obj`` that cannot be packed."""
    try:
        packb(obj)
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
        packb(obj)
    except (TypeError, ValueError, OverflowError):
        return path, obj
    return "", None
