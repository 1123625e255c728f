"""What a new user meets on the first day, one module at a time: a worker that cannot import the
animator, an update() that raises, a figure that changes size, progress bars in Jupyter, doctor
reading two workers that share a node name, ``--version``."""

import errno
import socket
import sys
import types
import warnings
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from celery_animate import Animator
from celery_animate.cli import doctor
from celery_animate.cli.parser import main
from celery_animate.client import progress
from celery_animate.config import Settings
from celery_animate.encode.encoder import _raise_if_disk_full
from celery_animate.errors import AnimatorNotImportable, DiskFull, FigureSizeChanged
from celery_animate.render.frame_loop import PreparedFigure, render_frames
from celery_animate.render.loading import import_animator_class

# -- a worker that cannot import the animator's module -------------------------------------------


def test_a_module_the_worker_cannot_find_is_named_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AnimatorNotImportable) as info:
        import_animator_class("ca_no_such_pkg.wave:WaveAnimation")
    assert isinstance(info.value, ImportError)
    assert str(info.value) == (
        "cannot import animator ca_no_such_pkg.wave:WaveAnimation: no module named 'ca_no_such_pkg' "
        f"on {socket.gethostname()} (current directory {tmp_path}). Workers import the animator's "
        "module by name: add the directory that holds the ca_no_such_pkg/ folder to the worker's "
        "PYTHONPATH, start the worker as `python -m celery ...` from that directory (plain "
        "`celery` does not keep it on the path), or install your package on the worker")
    assert info.value.__cause__ is None and info.value.__suppress_context__  # one short traceback
    with pytest.raises(AnimatorNotImportable, match=r"holds ca_no_such_module\.py to the worker"):
        import_animator_class("ca_no_such_module:Wave")


def test_a_dependency_missing_on_the_worker_is_named(tmp_path, monkeypatch):
    (tmp_path / "ca_needs_dep.py").write_text("import ca_not_installed_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(AnimatorNotImportable, match=(
                r"cannot import animator ca_needs_dep:Anim: its module ca_needs_dep imports "
                r"ca_not_installed_anywhere, which is not installed on .+: install it there too")):
            import_animator_class("ca_needs_dep:Anim")
    finally:
        sys.modules.pop("ca_needs_dep", None)


def test_a_class_missing_from_the_workers_module_is_named():
    with pytest.raises(AnimatorNotImportable, match=(
            r"cannot import animator celery_animate.client.animator:Gone: module "
            r"celery_animate.client.animator \(.+animator.py\) has no Gone: give this worker the "
            "same version of the code as the client")):
        import_animator_class("celery_animate.client.animator:Gone")


# -- update() raising, and a figure changing size -------------------------------------------------

class Square(Animator):
    """A 600x400 figure (padded to 608x400 in the video); ``grow_at`` widens it, ``fail_at`` raises."""

    def __init__(self, fail_at=None, grow_at=None):
        self.fail_at, self.grow_at = fail_at, grow_at

    def setup(self):
        self.fig = Figure(figsize=(6, 4), dpi=100)
        self.text = self.fig.text(0.5, 0.5, "")
        return self.fig

    def update(self, frame_idx, params):
        if frame_idx == self.fail_at:
            raise ValueError("bad params")
        if frame_idx == self.grow_at:
            self.fig.set_size_inches(6.4, 4)
        self.text.set_text(str(frame_idx))


def frames(animator, n=4):
    prepared = PreparedFigure.prepare(animator)
    return [rgb for _, rgb in render_frames(prepared, ((i, {}) for i in range(n)))]


def test_an_exception_from_update_names_its_frame():
    with pytest.raises(ValueError, match="bad params") as info:
        frames(Square(fail_at=2))
    assert info.value.__notes__ == ["raised by update() for frame 2"]


def test_one_worker_passes_the_frame_of_a_failed_update_to_the_caller(tmp_path):
    with pytest.raises(ValueError) as info:
        Square(fail_at=1).make_video(tmp_path / "x.mp4", [{}] * 3, fps=3, num_workers=1,
                                     disable_progress_bar=True, settings=Settings())
    assert "raised by update() for frame 1" in info.value.__notes__


def test_a_size_change_is_reported_in_the_sizes_the_user_set():
    assert frames(Square())[0].shape == (400, 608, 3)  # the video's frames are padded
    with pytest.raises(FigureSizeChanged) as info:
        frames(Square(grow_at=2))
    assert str(info.value) == ("frame 2 is 640x400 pixels but earlier frames are 600x400; update() "
                               "must not change the figure size or dpi")


# -- progress bars in Jupyter ---------------------------------------------------------------------

@pytest.fixture
def kernel(monkeypatch):
    """This process seen as a Jupyter kernel: an IPython whose shell runs IPKernelApp."""
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)  # a kernel's stderr is no terminal


def test_outside_jupyter_bars_follow_the_terminal(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not progress.in_notebook() and progress.resolve_disable(None)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert not progress.resolve_disable(None)
    assert progress.resolve_disable(True) and not progress.resolve_disable(False)


def test_a_terminal_ipython_is_no_notebook(monkeypatch):
    shell = types.SimpleNamespace(config={"TerminalIPythonApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert not progress.in_notebook()


def test_in_jupyter_without_ipywidgets_bars_are_text_and_nothing_warns(kernel, monkeypatch, capsys):
    monkeypatch.setattr(progress.importlib.util, "find_spec", lambda name: None)
    assert progress.in_notebook() and not progress.resolve_disable(None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm.auto's "IProgress not found" would raise here
        bar = progress.progress_bar(total=3, desc="Rendering frames", disable=False)
        bar.update(3)
        bar.close()
    assert type(bar) is progress.tqdm
    assert "Rendering frames: 100%" in capsys.readouterr().err


def test_in_jupyter_with_ipywidgets_bars_are_widgets(kernel, monkeypatch):
    import tqdm.notebook

    made = []
    monkeypatch.setattr(progress.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(tqdm.notebook, "tqdm", lambda **kwargs: made.append(kwargs) or "widget")
    assert progress.progress_bar(total=3, disable=False) == "widget" and made == [{"total": 3,
                                                                                  "disable": False}]
    assert type(progress.progress_bar(total=3, disable=True)) is progress.tqdm  # no bar at all


# -- doctor, with two workers under one node name -------------------------------------------------

class Replies:
    """An app whose broadcast of active_queues answers with ``replies`` (one dict per worker)."""

    def __init__(self, replies):
        self.control = types.SimpleNamespace(broadcast=lambda command, **kwargs: replies)


def test_doctor_counts_workers_that_share_a_node_name_and_names_the_fix():
    app = Replies([{"celery@box": [{"name": "render"}]}, {"celery@box": [{"name": "gpu"}]}])
    with pytest.raises(doctor.SharedNodeName) as info:
        doctor._queues(Settings(), app)
    assert str(info.value) == (
        "render: 1 worker(s); gpu: 1 worker(s), but 2 workers answer as celery@box: workers on one "
        "machine need a node name each, or Celery mixes up their replies; start them with "
        "--hostname, e.g. `celery -A celery_animate worker -Q render --hostname render@%h` and "
        "`-Q gpu --hostname gpu@%h`")
    app = Replies([{"render@box": [{"name": "render"}]}, {"gpu@box": [{"name": "gpu"}]}])
    assert doctor._queues(Settings(), app) == "render: 1 worker(s); gpu: 1 worker(s)"


def test_a_shared_node_name_does_not_skip_the_checks_after_it(monkeypatch):
    def shared(settings, app):
        raise doctor.SharedNodeName("2 workers answer as celery@box; use --hostname")

    checks = [("broker", lambda s, a: "up"), ("workers", shared), ("encoder", lambda s, a: "libx264")]
    monkeypatch.setattr(doctor, "CHECKS", checks)
    monkeypatch.setattr(doctor, "app_for", lambda settings: None)
    results = doctor.run_checks(Settings())
    assert [(c.name, c.ok) for c in results] == [("broker", True), ("workers", False), ("encoder", True)]
    monkeypatch.setattr(doctor, "CHECKS", [("workers", lambda s, a: 1 / 0), *checks[2:]])
    assert doctor.run_checks(Settings())[1].detail == "skipped: fix the problems above first"



def test_doctor_tries_both_folders_of_a_spilling_frame_store(tmp_path):
    fast, spill = tmp_path / "fast", tmp_path / "spill"
    settings = Settings(frame_store=fast.as_uri(), frame_spill=spill.as_uri())
    assert doctor._frame_store(settings, None) == (
        f"{fast.as_uri()!r} can store and return frames, and spill into {spill.as_uri()!r}")
    assert list(fast.iterdir()) == [] and list(spill.iterdir()) == []  # the probes are gone
    spill.rmdir()
    spill.write_bytes(b"not a folder")
    with pytest.raises(OSError):
        doctor._frame_store(settings, None)

# -- the command line -----------------------------------------------------------------------------

def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("celery-animate ") and out.split()[1][0].isdigit()


def test_only_a_real_filesystem_is_called_full(tmp_path):
    # /proc reports no space at all: ffmpeg failing there is not a full disk.
    _raise_if_disk_full(FileNotFoundError(2, "No such file or directory"), Path("/proc/out.mp4"))
    with pytest.raises(DiskFull, match="no space left"):
        _raise_if_disk_full(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "v.mp4")
