"""Periodic renders' pruning: only files of the exact name the task writes, in its own directory."""

import pytest

from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument
from celery_animate.worker.tasks.periodic import check_prefix, periodic_directory, prune


def test_prune_keeps_the_newest_of_its_own_files_only(tmp_path):
    names = ["Dash-20260101T000000Z.mp4", "Dash-20260101T010000Z.mp4", "Dash-20260101T020000Z.mp4",
             "Dash-notes.mp4", "Dash-20260101T000000Z.mp4.bak", "Dashboard-20250101T000000Z.mp4"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    victim = tmp_path.parent / f"{tmp_path.name}-victim.mp4"
    victim.write_bytes(b"keep")
    (tmp_path / "Dash-20200101T000000Z.mp4").symlink_to(victim)
    removed = prune(tmp_path, "Dash", 1)
    assert sorted(p.name for p in removed) == names[:2]
    assert victim.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["Dash-20200101T000000Z.mp4", *names[2:]])


@pytest.mark.parametrize("prefix", ["../../victim2/a", "a/b", "/etc/x", "..", ".hidden", "", "*", "a b"])
def test_prefixes_are_plain_stems(tmp_path, prefix):
    with pytest.raises(InvalidArgument, match="plain file-name stem"):
        check_prefix(prefix)
    with pytest.raises(InvalidArgument):
        prune(tmp_path, prefix, 0)


@pytest.mark.parametrize("output_dir", ["s3://renders/out/", "gs://renders/out", b"/data/out"])
def test_periodic_renders_refuse_what_is_not_a_directory(output_dir, tmp_path):
    settings = Settings(output_root=f"{tmp_path},s3://renders/out/")
    with pytest.raises(InvalidArgument, match="periodic renders write to a directory"):
        periodic_directory(output_dir, settings)
    assert periodic_directory(str(tmp_path / "dash"), settings) == tmp_path / "dash"
