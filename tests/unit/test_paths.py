"""Output paths: the output root, symlinks, writability, and the encoders' temporary files."""

from pathlib import Path

import pytest

from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument, OutputPathRefused
from celery_animate.ids import new_job_id
from celery_animate.paths import output_path, partial_path, remove_partials, resolve_output


def test_without_a_root_paths_are_made_absolute_and_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_output("out.mp4", Settings()) == str(tmp_path / "out.mp4")
    with pytest.raises(InvalidArgument, match="is a directory"):
        resolve_output(tmp_path, Settings())
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputPathRefused, match="not a writable directory"):
        resolve_output(blocker / "x.mp4", Settings())
    for bad in ("", " ", "dir/..", "a\0b.mp4"):
        with pytest.raises(InvalidArgument):
            resolve_output(bad, Settings())


@pytest.mark.parametrize("escape", ["../outside.mp4", "/etc/passwd", "a/../../b.mp4", "."])
def test_paths_cannot_leave_the_root(tmp_path, escape):
    settings = Settings(output_root=str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    with pytest.raises(OutputPathRefused, match="outside CELERY_ANIMATE_OUTPUT_ROOT"):
        output_path(escape, settings)


def test_symlinks_cannot_lead_out_of_the_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "planted.mp4").symlink_to(outside / "victim.mp4")
    (root / "dir").symlink_to(outside)
    settings = Settings(output_root=str(root))
    for name in ("planted.mp4", "dir/x.mp4"):
        with pytest.raises(OutputPathRefused):
            output_path(name, settings)
    assert output_path("sub/x.mp4", settings) == root.resolve() / "sub" / "x.mp4"


def test_remove_partials_by_generation(tmp_path):
    output = tmp_path / "v.mp4"
    job, other = new_job_id(), new_job_id()
    g1, g2, g3 = (partial_path(output, job, g) for g in (1, 2, 3))
    foreign = partial_path(output, other, 1)
    for path in (g1, g2, g3, foreign):
        path.write_bytes(b"")
    assert g1.name.startswith(".v.") and g1.name.endswith(".partial.mp4")
    assert g1 != partial_path(output, job, 1)  # each attempt its own file
    assert sorted(remove_partials(output, job, below_generation=3)) == sorted([g1, g2])
    assert g3.exists() and foreign.exists()
    assert remove_partials(output, job) == [g3]
    assert sorted(p.name for p in tmp_path.iterdir()) == [foreign.name]


def test_output_path_keeps_relative_paths_under_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert output_path("a/b.mp4", Settings()) == Path(tmp_path) / "a" / "b.mp4"


def test_a_missing_output_directory_is_refused_by_name_and_not_created(tmp_path):
    typo = tmp_path / "vidoes" / "sub" / "out.mp4"
    with pytest.raises(OutputPathRefused) as info:
        resolve_output(typo, Settings())
    assert str(info.value) == (f"cannot write {typo}: the directory {typo.parent} does not exist; "
                               f"create it first (mkdir -p '{typo.parent}') or correct the path")
    assert list(tmp_path.iterdir()) == []
    typo.parent.mkdir(parents=True)
    assert resolve_output(typo, Settings()) == str(typo)
    assert list(typo.parent.iterdir()) == []  # the check's own file is gone again


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_directory_that_takes_no_file_is_refused_before_rendering():
    # /proc exists and, for root, passes a permission check; files cannot be created in it.
    with pytest.raises(OutputPathRefused, match=r"cannot write /proc/out.mp4: creating a file in /proc "
                                                r"failed \(.+\); choose a directory"):
        resolve_output("/proc/out.mp4", Settings())
