"""video_extra_ffmpeg_params: only allowed options with values of the allowed shapes."""

import pytest

from celery_animate.errors import InvalidArgument
from celery_animate.ffmpeg_args import check_extra_ffmpeg_params
from celery_animate.options import RenderOptions


@pytest.mark.parametrize("args", [
    [],
    ["-crf", "18"],
    ["-tune", "animation", "-g", "60", "-bf", "2", "-pix_fmt", "yuv420p", "-movflags", "+faststart"],
    ["-b:v", "4M", "-maxrate", "6M", "-bufsize", "8M"],
    ["-vf", "realtime"],
    ["-vf", "scale=640:-2,setpts=PTS/2"],
    ["-filter:v", "eq=brightness=0.05:contrast=1.1"],
])
def test_allowed(args):
    assert check_extra_ffmpeg_params(args) == args
    assert RenderOptions(fps=1, video_extra_ffmpeg_params=args).video_extra_ffmpeg_params == args


@pytest.mark.parametrize("args, message", [
    # a second output outside the output root
    (["-map", "0:v", "-f", "mp4", "/some/where/else.mp4", "-map", "0:v"], "'-map' is not allowed"),
    # another input: any file the worker can read, or bytes from a data: URL
    (["-i", "/etc/passwd"], "'-i' is not allowed"),
    (["-f", "s8", "-i", "data:,AAAA"], "'-f' is not allowed"),
    (["-vf", "drawtext=textfile=/etc/passwd"], "filter 'drawtext' is not allowed"),
    (["-vf", "movie=/etc/hosts[m];[in][m]overlay"], "single chain"),
    (["-vf", "scale=640:-2,subtitles=/root/.ssh/id_rsa"], "filter 'subtitles' is not allowed"),
    (["-vf", "scale='w=640'"], "arguments that are not allowed"),
    (["-crf", "/tmp/x"], "not allowed for ffmpeg option -crf"),
    (["-preset", "slow; rm -rf /"], "not allowed for ffmpeg option -preset"),
    (["-crf"], "-crf in video_extra_ffmpeg_params needs a value"),
    (["/tmp/extra-output.mp4"], "'/tmp/extra-output.mp4' is not allowed"),
    (["-y", "/tmp/out.mp4"], "'-y' is not allowed"),
    (["-x264-params", "stats=/tmp/x"], "is not allowed"),
    ("-crf 18", "must be a list of str"),
])
def test_refused(args, message):
    with pytest.raises(InvalidArgument, match=message):
        check_extra_ffmpeg_params(args)
    with pytest.raises(ValueError):  # still a ValueError for parallel_animate-style callers
        RenderOptions(fps=1, video_extra_ffmpeg_params=args)
