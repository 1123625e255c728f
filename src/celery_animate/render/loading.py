"""How an animator crosses the wire: its import path and its attributes, never its code.

The client sends ``"module:QualName"`` and the instance attributes as msgpack;
a worker checks the path against its allowlist *before* importing anything,
then rebuilds the instance without calling ``__init__`` again.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
from typing import Any

from celery_animate import wire
from celery_animate.errors import AnimatorNotAllowed, AnimatorNotImportable, InvalidArgument, UnpackableError
from celery_animate.render.animator_base import AnimatorBase


def animator_path(animator: AnimatorBase) -> str:
    """``"module:QualName"`` of the animator's class, as workers will import it.

    Raises :class:`InvalidArgument` for a class defined inside a function.
    """
    cls = type(animator)
    if "<locals>" in cls.__qualname__:
        raise InvalidArgument(
            f"{cls.__qualname__} is defined inside a function; workers can only import classes "
            "defined at the top level of a module: move it there"
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def pack_attrs(animator: AnimatorBase) -> bytes:
    """The animator's instance attributes as msgpack; raises :class:`UnpackableError` naming the
    first that cannot go, and saying to build such objects in ``setup()``."""
    attrs = dict(vars(animator))
    try:
        wire.check_packable(attrs, f"attribute of {type(animator).__qualname__}")
    except UnpackableError as exc:
        raise UnpackableError(exc.where, exc.path, exc.value, hint=SETUP_HINT) from None
    return wire.packb(attrs)


#: What to do about an attribute that cannot be sent (a lambda, a figure, an open file...).
SETUP_HINT = ("Workers restore the animator's attributes without calling __init__ again: build "
              "objects that are not plain data (functions, lambdas, figures, open files, clients) in "
              "setup(), which runs on every worker, and keep only their inputs as attributes.")


def check_allowed(path: str, allowed: tuple[str, ...]) -> None:
    """Refuse ``path`` unless its module starts with one of ``allowed`` (empty: all allowed)."""
    if not allowed:
        return
    module = path.partition(":")[0]
    if not any(module == prefix or module.startswith(prefix.rstrip(".") + ".") for prefix in allowed):
        raise AnimatorNotAllowed(
            f"animator {path!r} is not in CELERY_ANIMATE_ALLOWED_ANIMATORS ({', '.join(allowed)}); "
            "add its module prefix there on the workers to allow it"
        )


def import_animator_class(path: str, allowed: tuple[str, ...] = ()) -> type[AnimatorBase]:
    """Import the class ``module:QualName``, after checking the allowlist (before any import).

    Raises :class:`AnimatorNotAllowed`, :class:`InvalidArgument` for a
    malformed path or a class that is not an animator, :class:`AnimatorNotImportable` (an
    ``ImportError``) naming the module and what to do when it, or a module it imports, is not
    found here, or the class is not in it; and whatever else importing the module raises.
    """
    if not isinstance(path, str):
        raise InvalidArgument(f"animator path must be a str, got {type(path).__name__}")
    check_allowed(path, allowed)
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise InvalidArgument(f"animator path {path!r} is not of the form 'package.module:ClassName'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise AnimatorNotImportable(_not_found(path, module_name, exc)) from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AnimatorNotImportable(
                f"cannot import animator {path}: module {module_name} "
                f"({getattr(sys.modules.get(module_name), '__file__', None) or 'no file'}) has no "
                f"{qualname}: give this worker the same version of the code as the client") from None
    if not (isinstance(obj, type) and issubclass(obj, AnimatorBase)):
        raise InvalidArgument(f"{path} is not a subclass of celery_animate.Animator")
    return obj


def _not_found(path: str, module_name: str, exc: ModuleNotFoundError) -> str:
    """What to say when importing ``module_name`` (of animator ``path``) here failed with ``exc``."""
    missing = exc.name or ""
    if missing and (module_name == missing or module_name.startswith(missing + ".")):
        top = module_name.split(".")[0]
        holder = f"the {top}/ folder" if "." in module_name else f"{top}.py"
        return (f"cannot import animator {path}: no module named {missing!r} on "
                f"{socket.gethostname()} (current directory {os.getcwd()}). Workers import the "
                f"animator's module by name: add the directory that holds {holder} to the "
                "worker's PYTHONPATH, start the worker as `python -m celery ...` from that "
                "directory (plain `celery` does not keep it on the path), or install your "
                "package on the worker")
    return (f"cannot import animator {path}: its module {module_name} imports {missing or exc}, "
            f"which is not installed on {socket.gethostname()}: install it there too")


def load_animator(path: str, attrs: bytes, allowed: tuple[str, ...] = ()) -> AnimatorBase:
    """Rebuild the animator ``path`` from its packed instance attributes.

    ``__init__`` is not called again: the attributes it set on the client are restored as they were.
    """
    cls = import_animator_class(path, allowed)
    values = wire.unpackb(attrs)
    if not isinstance(values, dict) or not all(isinstance(key, str) for key in values):
        raise InvalidArgument(f"the attributes sent for {path} are not a dict of names")
    animator = cls.__new__(cls)
    animator.__dict__.update(values)
    return animator
