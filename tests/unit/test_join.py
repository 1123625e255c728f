"""Joining segments by stream copy: frames and order kept, mismatched segments and gaps refused."""

import subprocess

import imageio
import numpy as np
import pvio
import pytest

from celery_animate.encode.encoder import _check_complete
from celery_animate.encode.join import check_continuous, ffmpeg_exe, join_segments, packets
from celery_animate.errors import EncodeIncomplete


def gray(level: int, size=(48, 64)) -> np.ndarray:
    return np.full((*size, 3), level, np.uint8)


def encode(path, levels, size=(48, 64)):
    pvio.write_frames_to_video(str(path), [gray(v, size) for v in levels], 10, quiet=True)
    return path


def decoded_levels(path) -> list[int]:
    with imageio.get_reader(str(path), "ffmpeg") as reader:
        return [round(float(frame.mean())) for frame in reader]


def test_segments_join_into_one_video_with_every_frame_in_order(tmp_path):
    # A quote and a space in the directory: the concat list must quote paths itself.
    where = tmp_path / "it's here"
    where.mkdir()
    levels = [[20 + 10 * i for i in range(k * 7, k * 7 + 7)] for k in range(3)]
    segments = [encode(where / f"s{k}.mp4", levels[k]) for k in range(3)]
    joined = join_segments(segments, where / "out.mp4")
    assert len(joined.pts) == 21 and joined.size == (64, 48)
    expected = [level for segment in levels for level in segment]
    assert all(abs(got - want) <= 2 for got, want in zip(decoded_levels(where / "out.mp4"), expected,
                                                         strict=True))


def test_segments_of_different_settings_are_refused(tmp_path):
    segments = [encode(tmp_path / "a.mp4", [10] * 8), encode(tmp_path / "b.mp4", [10] * 8, size=(64, 96))]
    with pytest.raises(EncodeIncomplete, match="different encoders or settings"):
        join_segments(segments, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_a_gap_in_the_timestamps_is_found(tmp_path):
    gap = tmp_path / "gap.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=10:duration=1", "-vf", r"setpts=N+5*gte(N\,5)",
                    "-fps_mode", "passthrough", "-c:v", "libx264", str(gap)], check=True)
    assert len(packets(gap).pts) == 10
    with pytest.raises(EncodeIncomplete, match=r"not continuous \(after frame 4\)"):
        check_continuous(gap, 10)
    with pytest.raises(EncodeIncomplete, match="has 10 frames, not 11"):
        check_continuous(gap, 11)


def test_a_missing_segment_file_fails_the_join(tmp_path):
    with pytest.raises(EncodeIncomplete, match="ffmpeg failed"):
        join_segments([encode(tmp_path / "a.mp4", [10] * 4), tmp_path / "gone.mp4"], tmp_path / "o.mp4")


def test_an_encode_is_checked_by_its_packets(tmp_path):
    # What every encode is checked with before its file is renamed into place.
    video = encode(tmp_path / "v.mp4", range(10, 80, 10))
    assert len(packets(video).pts) == 7
    _check_complete(video, 7)
    with pytest.raises(EncodeIncomplete, match="ffmpeg wrote 7 of 8 frames"):
        _check_complete(video, 8)
    cut = tmp_path / "cut.mp4"  # a writer killed before its trailer: no moov atom
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(EncodeIncomplete, match="unreadable video"):
        _check_complete(cut, 7)
