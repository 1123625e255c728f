"""The embedded cluster's folders, in shared memory and on disk: made private, refused when
small (shared memory), orphans removed."""

import os
import stat
import subprocess
import sys
import tempfile

from celery_animate.client.embedded import scratch
from celery_animate.client.embedded.scratch import PREFIX, make_scratch, make_spill, remove_orphans


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_new_folder_is_private_and_named_after_its_process(tmp_path):
    folder = make_scratch(tmp_path)
    assert folder.parent == tmp_path and folder.name.startswith(f"{PREFIX}{os.getpid()}-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_no_folder_where_shared_memory_is_small_or_missing(tmp_path, monkeypatch):
    assert make_scratch(tmp_path / "missing") is None
    monkeypatch.setattr(scratch, "MIN_FREE_BYTES", 1 << 62)
    assert make_scratch(tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_only_folders_of_exited_processes_are_removed(tmp_path):
    orphan = tmp_path / f"{PREFIX}{dead_pid()}-abc"
    (orphan / "job").mkdir(parents=True)
    (orphan / "job" / "000000001.frame").write_bytes(b"x")
    live = tmp_path / f"{PREFIX}{os.getpid()}-def"
    live.mkdir()
    other = tmp_path / "celery-animate-notapid-x"
    other.mkdir()
    unrelated = tmp_path / f"{dead_pid()}-frames"
    unrelated.mkdir()
    # A link named like an orphan is not followed: what it points to stays.
    target = tmp_path / "precious"
    target.mkdir()
    (target / "keep").write_bytes(b"k")
    link = tmp_path / f"{PREFIX}{dead_pid()}-link"
    link.symlink_to(target)

    assert remove_orphans(tmp_path) == [orphan]
    assert not orphan.exists()
    assert live.is_dir() and other.is_dir() and unrelated.is_dir() and link.is_symlink()
    assert (target / "keep").read_bytes() == b"k"


def test_the_spill_folder_is_private_in_the_temporary_directory_whatever_its_room(
        tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(scratch, "MIN_FREE_BYTES", 1 << 62)  # shared memory's rule does not apply
    orphan = tmp_path / f"{PREFIX}{dead_pid()}-old"
    orphan.mkdir()
    folder = make_spill()
    assert folder.parent == tmp_path and folder.name.startswith(f"{PREFIX}{os.getpid()}-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not orphan.exists()
