"""One error tree: what the package raises is a CeleryAnimateError that is also the builtin it replaces.

The walk over the package's source fails on a new ``raise ValueError(...)`` (or any builtin
exception) outside the allow-list below, each entry of which says why that one may stay.
"""

import ast
import builtins
import inspect
import sys
import types
from pathlib import Path

import pytest

import celery_animate
from celery_animate import errors

PACKAGE = Path(celery_animate.__file__).parent

#: Builtin exception classes, by name.
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}

#: ``(module file, enclosing function, exception)`` -> why that raise of a builtin may stay.
ALLOWED = {
    ("__init__.py", "__getattr__", "AttributeError"):
        "PEP 562: a module's __getattr__ must raise AttributeError, or hasattr() and "
        "getattr(module, name, default) break",
    ("encode/pvio_adapter.py", "PvioFeed.__getitem__", "IndexError"):
        "the sequence protocol pvio reads the frames through; pvio only ever asks for [0]",
    ("wire.py", "_default", "TypeError"):
        "msgpack's default hook signals an unsupported type with TypeError; check_packable and "
        "the chunk packing of enqueue turn it into UnpackableError naming the value",
    **{("cli/doctor.py", function, "RuntimeError"):
       "a failed check: run_checks catches it and reports its message as the check's detail"
       for function in ("_frame_store", "_queues", "_nvenc", "_wait_for")},
}


def builtin_raises(path: Path) -> list[tuple[str, int, str]]:
    """``(enclosing function, line, exception name)`` of every ``raise <builtin>`` in ``path``."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, (*scope, child.name))
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                target = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                name = None
                if isinstance(target, ast.Name):
                    name = target.id
                elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                        and target.value.id == "builtins":
                    name = target.attr
                if name in BUILTIN_EXCEPTIONS:
                    found.append((".".join(scope) or "<module>", child.lineno, name))
            visit(child, scope)

    visit(ast.parse(path.read_text(), str(path)), ())
    return found


def all_builtin_raises() -> dict[tuple[str, str, str], list[int]]:
    sites: dict[tuple[str, str, str], list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for function, line, name in builtin_raises(path):
            sites.setdefault((relative, function, name), []).append(line)
    return sites


def test_the_package_raises_no_bare_builtin_exception():
    sites = all_builtin_raises()
    unexplained = [f"{file}:{lines[0]} in {function}: raise {name}"
                   for (file, function, name), lines in sites.items()
                   if (file, function, name) not in ALLOWED]
    assert not unexplained, (
        "raise a CeleryAnimateError subclass that also derives from the builtin (see errors.py), or "
        "add the site to ALLOWED with the reason it may stay:\n" + "\n".join(unexplained))


def test_every_allowed_builtin_raise_still_exists():
    stale = set(ALLOWED) - set(all_builtin_raises())
    assert not stale, f"allow-list entries that match no raise any more (remove them): {sorted(stale)}"


def test_the_walk_finds_what_it_must(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "import builtins\n"
        "class A:\n"
        "    def f(self):\n"
        "        raise ValueError('x')\n"
        "def g():\n"
        "    try:\n"
        "        pass\n"
        "    except KeyError:\n"
        "        raise LookupError from None\n"
        "    raise builtins.TimeoutError()\n"
        "def h():\n"
        "    raise errors.InvalidArgument('fine')\n"
    )
    assert builtin_raises(source) == [("A.f", 4, "ValueError"), ("g", 9, "LookupError"),
                                      ("g", 10, "TimeoutError")]


def error_classes() -> list[type[BaseException]]:
    return [value for value in vars(errors).values()
            if isinstance(value, type) and issubclass(value, BaseException)
            and value.__module__ == errors.__name__]


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_is_in_the_tree(cls):
    assert issubclass(cls, errors.CeleryAnimateError)


def test_exported_errors_are_the_classes_of_errors_py():
    exported = [name for name, module in celery_animate._EXPORTS.items() if module == "errors"]
    assert exported and all(name in celery_animate.__all__ for name in exported)
    assert all(getattr(celery_animate, name) is getattr(errors, name) for name in exported)


@pytest.mark.parametrize("name, builtin", [
    ("InvalidArgument", ValueError), ("UnpackableError", TypeError), ("InvalidAnimator", TypeError),
    ("MissingDependency", ImportError), ("IncompatibleDependency", RuntimeError),
    ("FileMissing", FileNotFoundError), ("EmbeddedClusterFailed", RuntimeError),
    ("ParamsExpired", LookupError), ("JobNotFinished", RuntimeError), ("WaitTimedOut", TimeoutError),
])
def test_errors_that_replace_a_builtin_derive_from_it(name, builtin):
    cls = getattr(errors, name)
    assert issubclass(cls, builtin) and issubclass(cls, errors.CeleryAnimateError)
    assert inspect.getdoc(cls)
    assert name in celery_animate.__all__ and getattr(celery_animate, name) is cls


# -- the sites that raised builtins, raising the tree's classes now ---------------------------

def test_a_missing_encoder_is_a_missing_dependency(monkeypatch):
    from celery_animate.encode import pvio_adapter

    monkeypatch.setitem(sys.modules, "pvio", None)  # import pvio now raises ImportError
    with pytest.raises(errors.MissingDependency, match=r"celery-animate\[encode\]") as info:
        pvio_adapter.load_pvio()
    assert isinstance(info.value, ImportError)
    assert pvio_adapter.encoder_capabilities()["pvio"] is False  # still caught as an ImportError


def test_a_missing_redis_server_is_a_missing_file(monkeypatch):
    from celery_animate.client.embedded import redis_server

    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)
    monkeypatch.setattr(redis_server.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(errors.FileMissing, match="needs redis-server") as info:
        redis_server.find_redis_server()
    assert isinstance(info.value, FileNotFoundError)


def test_an_embedded_cluster_without_workers_is_not_alive():
    from celery_animate.client.embedded.cluster import EmbeddedCluster
    from celery_animate.config import Settings

    with pytest.raises(errors.EmbeddedClusterFailed, match="exited unexpectedly"):
        EmbeddedCluster(1, Settings()).check_alive()


def test_expired_params_are_params_expired(fake_redis):
    from celery_animate.ids import new_job_id
    from celery_animate.job.record import JobRecord

    with pytest.raises(errors.ParamsExpired, match="params of chunk 3"):
        JobRecord(fake_redis, new_job_id()).load_chunk(3, 10)


def test_setup_that_returns_no_figure_is_an_invalid_animator():
    from celery_animate.render.animator_base import AnimatorBase

    class NoFigure(AnimatorBase):
        def setup(self):
            return None

        def update(self, frame_idx, params):
            pass

    with pytest.raises(errors.InvalidAnimator, match=r"setup\(\) must return the matplotlib Figure"):
        NoFigure().setup_figure()


def fake_job(monkeypatch, state: str):
    """A RenderJob whose record reads as ``state`` and never ends, without Redis."""
    from celery_animate.client.render_job import RenderJob
    from celery_animate.config import Settings
    from celery_animate.options import Progress

    closed = "redis://127.0.0.1:1/0"  # never reached: every read below is faked
    job = RenderJob("0" * 32, Settings(broker_url=closed, result_backend=closed))
    monkeypatch.setattr(job._record, "ending", lambda: (state, None, None))
    monkeypatch.setattr(job._record, "progress", lambda: Progress(state, 0, 0, 4))

    class Subscription:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def sleep(self, seconds):
            pass

    monkeypatch.setattr(job._record, "end_signal", lambda: Subscription())
    return job


def test_an_unfinished_job_has_no_result(monkeypatch):
    with pytest.raises(errors.JobNotFinished, match="has not finished"):
        fake_job(monkeypatch, "rendering").result()


def test_a_wait_that_times_out_is_wait_timed_out(monkeypatch):
    with pytest.raises(errors.WaitTimedOut, match="still running after 0 s") as info:
        fake_job(monkeypatch, "rendering").wait(timeout=0)
    assert isinstance(info.value, TimeoutError)


@pytest.mark.parametrize("kwargs, message", [
    ({"timeout": -1}, "timeout must be None or a number of seconds >= 0"),
    ({"timeout": "soon"}, "timeout must be None"),
    ({"poll": 0}, "poll must be a positive number"),
    ({"poll": float("nan")}, "poll must be a positive number"),
])
def test_wait_refuses_bad_timeouts(monkeypatch, kwargs, message):
    with pytest.raises(errors.InvalidArgument, match=message):
        fake_job(monkeypatch, "rendering").wait(**kwargs)


def test_the_cli_loader_raises_tree_errors(tmp_path):
    from celery_animate.cli.commands import load_animator_class

    with pytest.raises(errors.FileMissing, match="no such file"):
        load_animator_class(str(tmp_path / "nope.py") + ":Thing")
    with pytest.raises(errors.InvalidArgument, match="must look like"):
        load_animator_class("no-colon-here")
    module = types.ModuleType("ca_test_empty_module")
    sys.modules[module.__name__] = module
    try:
        with pytest.raises(errors.InvalidArgument, match="has no Animator subclass named 'Thing'"):
            load_animator_class(f"{module.__name__}:Thing")
    finally:
        del sys.modules[module.__name__]
