"""The frame cache's keys: everything a frame's pixels depend on under the animator contract.

A frame drawn by ``update(frame_idx, params)`` on the figure ``setup()`` built
is a function of:

* the code: every function and class defined in the module of the animator
  class and in those of its base classes, as compiled by the process that
  renders (celery-animate's own excepted: see :data:`FRAME_FORMAT_VERSION`),
  and those modules' plain-data globals (numbers, strings, lists, ...);
* the instance's attributes (as they travel to workers) and ``cache_key()``;
* the frame's index and params;
* the options that change pixels: ``savefig_params`` (dpi, facecolor, ...)
  and ``reuse_figure_object``;
* matplotlib's version and the rcParams in force when ``setup()`` ran
  (those of the worker process; on the embedded cluster, the caller's);
* :data:`FRAME_FORMAT_VERSION`, bumped whenever this package draws or packs
  the same figure into other bytes.

Blitting is not in the key: it gives the same pixels as a full draw. What
the key cannot see (a file ``update()`` reads, a global, code in another
module) an animator adds through :meth:`AnimatorBase.cache_key`. The key
is computed by whoever has the cache's secret (a worker, or the caller of
an embedded render): a job cannot name the key its frames are kept under.
"""

from __future__ import annotations

import hashlib
import sys
import types
from dataclasses import dataclass
from typing import Any

import matplotlib

from celery_animate import wire
from celery_animate.cache import FrameCache
from celery_animate.errors import InvalidArgument
from celery_animate.options import RenderOptions
from celery_animate.render.animator_base import AnimatorBase

#: Bumped whenever a packed frame's bytes for the same pixels change (codec, layout).
FRAME_FORMAT_VERSION = 1
#: Module globals of these types count in the key by their repr, up to this many characters.
_PLAIN = (bool, int, float, complex, str, bytes, tuple, list, dict, frozenset, set)
MAX_GLOBAL_REPR = 100_000
#: rcParams that do not change pixels, or differ between a caller and its workers by design.
_RC_IGNORED = ("backend", "interactive", "toolbar", "webagg.", "tk.", "macosx.", "keymap.",
               "savefig.directory", "figure.raise_window", "timezone")


def rc_digest() -> str:
    """A digest of the rcParams in force now, but for those that cannot change a frame."""
    items = sorted((name, repr(value)) for name, value in matplotlib.rcParams.items()
                   if not name.startswith(_RC_IGNORED))
    return hashlib.blake2b(repr(items).encode(), digest_size=16).hexdigest()


def source_digest(cls: type) -> str | None:
    """A digest of the code as this process loaded it: every function and class defined in the
    modules of ``cls`` and its base classes (but celery-animate's own), by their compiled code,
    and those modules' plain-data globals. The file on disk is not read: a worker that still
    runs the old code must not key its frames as the new. None when a module is not loaded."""
    digest = hashlib.blake2b(digest_size=16)
    seen: set[str] = set()
    for klass in cls.__mro__:
        name = klass.__module__
        if name in seen or name == "builtins" or name.split(".")[0] in ("celery_animate", "abc"):
            continue
        seen.add(name)
        module = sys.modules.get(name)
        if module is None:
            return None
        digest.update(name.encode() + b"\0")
        for attr, value in sorted(vars(module).items(), key=lambda item: item[0]):
            part = _code_of(value, name)
            if part is not None:
                digest.update(attr.encode() + b"\0" + part + b"\0")
    return digest.hexdigest()


def _code_bytes(code: types.CodeType) -> bytes:
    """A function's compiled code as bytes: its bytecode, names and constants, nested code too.
    Not ``marshal``: its bytes change with the reference counts of the strings it holds."""
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    parts += [_code_bytes(const) if isinstance(const, types.CodeType) else repr(const).encode()
              for const in code.co_consts]
    return b"\x1f".join(parts)


def _code_of(value: Any, module: str, depth: int = 0) -> bytes | None:
    """The bytes that stand for a module global in the key: a function's compiled code, a class's
    methods and attributes, a plain value's repr (up to :data:`MAX_GLOBAL_REPR` characters);
    None for what the module imported from elsewhere."""
    if isinstance(value, types.FunctionType):
        if value.__module__ != module:
            return None
        return _code_bytes(value.__code__) + repr(value.__defaults__).encode()
    if isinstance(value, type):
        if value.__module__ != module or depth > 2:
            return None
        parts = [name.encode() + b"=" + (_code_of(getattr(member, "__func__", member), module,
                                                  depth + 1) or b"")
                 for name, member in sorted(vars(value).items(), key=lambda item: item[0])]
        return b";".join(parts)
    if isinstance(value, _PLAIN):
        text = repr(value)
        return text.encode() if len(text) <= MAX_GLOBAL_REPR else None
    return None


@dataclass(frozen=True)
class FrameKeys:
    """Names of a job's frames in a frame cache: :meth:`frame` of an animation's frame."""

    cache: FrameCache
    base: bytes

    @classmethod
    def build(cls, cache: FrameCache, animator: AnimatorBase, path: str, attrs: bytes,
              options: RenderOptions, rc: str) -> FrameKeys | None:
        """The keys of an animator's frames (``path`` and packed ``attrs`` as the job carries
        them, ``rc`` the :func:`rc_digest` before its ``setup()``); None when its source cannot be
        found. Raises :class:`InvalidArgument` when ``cache_key()`` returns what msgpack cannot
        carry."""
        source = source_digest(type(animator))
        if source is None:
            return None
        extra = animator.cache_key()
        try:
            packed_extra = wire.packb(extra)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidArgument(f"{type(animator).__qualname__}.cache_key() returned a value "
                                  f"msgpack cannot carry: {exc}") from None
        base = wire.packb([FRAME_FORMAT_VERSION, matplotlib.__version__, path,
                           source, attrs, rc, options.savefig_params, options.reuse_figure_object,
                           packed_extra])
        return cls(cache, hashlib.blake2b(base, digest_size=32).digest())

    def frame(self, frame_idx: int, params: Any) -> str:
        """The entry name of animation frame ``frame_idx`` drawn with ``params`` (as workers
        read them back from the wire)."""
        return self.cache.name("frame", self.base + wire.packb([frame_idx, params]))
