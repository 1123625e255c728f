"""formats.py and encode/formats.py: the format an output asks for, and each writer's file."""

from __future__ import annotations

import zipfile
from dataclasses import asdict

import numpy as np
import pytest
from helpers import decode

from celery_animate.encode.formats import count_frames, write_format
from celery_animate.errors import EncodeIncomplete, InvalidArgument
from celery_animate.formats import GIF, MP4, PNG_ZIP, WEBM, format_of, gif_fps, segmentable
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions, RenderResult


@pytest.mark.parametrize(("output", "fmt"), [
    ("out.mp4", MP4), ("out.MOV", MP4), ("noext", MP4), ("a.GIF", GIF), ("/x/y.webm", WEBM),
    ("s3://b/k/frames.zip", PNG_ZIP), ("s3://b/k.gif/v.mp4", MP4),
])
def test_the_extension_chooses_the_format(output, fmt):
    assert format_of(output) == fmt
    assert segmentable(fmt) is (fmt == MP4)


@pytest.mark.parametrize(("fps", "written"), [(30, 100 / 3), (24, 25), (10, 10), (12, 12.5),
                                              (100, 50), (0.5, 0.5)])
def test_gif_rates_are_whole_hundredths_of_a_second(fps, written):
    assert gif_fps(fps) == pytest.approx(written)


def frames(n: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """Flat colours that change with the frame: what a palette can hold exactly."""
    out = []
    for k in range(n):
        frame = np.full((height, width, 3), 255, np.uint8)
        frame[: height // 2, : (k + 1) * width // n] = (20 * k % 256, 0, 200)
        out.append(frame)
    return out


@pytest.mark.parametrize(("fmt", "name", "codec", "tolerance"), [
    (GIF, "a.gif", "gif", 0.5), (WEBM, "a.webm", "libvpx-vp9", 3.0), (PNG_ZIP, "a.zip", "png", 0.0),
])
def test_each_writer_keeps_every_frame_in_order(tmp_path, fmt, name, codec, tolerance):
    path, told = tmp_path / name, []
    expected = frames(10)
    assert write_format(fmt, path, expected, 10, None, told.append) == codec
    assert count_frames(fmt, path) == 10 and sum(told) == 10
    got = decode(path)
    assert len(got) == 10
    for want, have in zip(expected, got, strict=True):
        assert np.abs(want.astype(int) - have.astype(int)).mean() <= tolerance


def test_frames_of_another_size_fail_the_file_and_leave_nothing(tmp_path):
    mixed = frames(4) + frames(1, height=50)
    for fmt, name in ((GIF, "a.gif"), (WEBM, "a.webm"), (PNG_ZIP, "a.zip")):
        with pytest.raises(EncodeIncomplete, match="size"):
            write_format(fmt, tmp_path / name, mixed, 10, None)
    assert list(tmp_path.iterdir()) == []


def test_a_broken_zip_is_not_counted_as_frames(tmp_path):
    path = tmp_path / "a.zip"
    path.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(EncodeIncomplete):
        count_frames(PNG_ZIP, path)
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as archive:
        archive.writestr("00000.png", b"")
    assert count_frames(PNG_ZIP, tmp_path / "b.zip") == 1


def test_a_spec_that_asks_for_segments_of_a_gif_is_refused():
    spec = JobSpec("m:C", b"\x80", "/out/a.gif", 100, 4, RenderOptions(fps=10), 100)
    fields = {**asdict(spec), "options": asdict(spec.options)}
    assert JobSpec.from_fields(fields).n_segments == 1
    with pytest.raises(InvalidArgument, match="encoded whole"):
        JobSpec.from_fields({**fields, "segment_frames": 20})
    assert JobSpec.from_fields({**fields, "output": "/out/a.mp4", "segment_frames": 20}).n_segments == 5


@pytest.mark.parametrize(("name", "tag"), [("a.gif", '<img width="64" src="data:image/gif;base64,'),
                                           ("a.webm", 'src="data:video/webm;base64,'),
                                           ("a.mp4", 'src="data:video/mp4;base64,'),
                                           ("a.zip", '<a href="file://')])
def test_a_notebook_shows_each_format_inline_or_links_it(tmp_path, name, tag):
    (tmp_path / name).write_bytes(b"0123")
    result = RenderResult(str(tmp_path / name), 4, 64, 48, 10, "x", 4, 0.1)
    assert tag in result._repr_html_()
