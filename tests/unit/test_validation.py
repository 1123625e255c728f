"""Bad input is refused at every entry point, before anything is rendered or enqueued, and the
same way whatever ``num_workers`` is.

Three entries are tried for each case: ``make_video`` with one worker (in this process),
``make_video`` with two on a configured cluster, and ``submit``. The cluster is a Redis URL on a
closed port, so a check that is missing shows as a connection error instead of the expected one;
the one-worker path records whether ``setup()`` ran.
"""

import datetime
import itertools
import math

import pytest
from matplotlib.figure import Figure

from celery_animate import Animator, IndexedFrameParams
from celery_animate.client import serial
from celery_animate.config import Settings
from celery_animate.errors import FrameIndexError, InvalidArgument, OutputPathRefused, UnpackableError
from celery_animate.job.spec import plan_segments
from celery_animate.job.submission import enqueue
from celery_animate.options import RenderOptions, RenderResult
from celery_animate.params import check_param_by_frame

#: A broker and result backend nothing listens on.
CLOSED = "redis://127.0.0.1:1/0"

#: What Probe's setup() and update() were called with, in this process.
CALLS: list[object] = []


class Probe(Animator):
    """A 32x32 figure whose update() records the frames it is given."""

    def __init__(self):
        self.label = "probe"

    def setup(self):
        CALLS.append("setup")
        fig = Figure(figsize=(0.32, 0.32), dpi=100)
        self.text = fig.text(0.5, 0.5, "", ha="center")
        return fig

    def update(self, frame_idx, params):
        CALLS.append(frame_idx)
        self.text.set_text(str(frame_idx))


@pytest.fixture(autouse=True)
def clear_calls():
    CALLS.clear()
    yield
    CALLS.clear()


def one_worker(animator, output, params, **kwargs):
    kwargs = {"fps": 10, "num_workers": 1, "disable_progress_bar": True, "settings": Settings(), **kwargs}
    return animator.make_video(output, params, **kwargs)


def two_workers(animator, output, params, **kwargs):
    kwargs = {"fps": 10, "num_workers": 2, "disable_progress_bar": True,
              "settings": Settings(broker_url=CLOSED, result_backend=CLOSED), **kwargs}
    return animator.make_video(output, params, **kwargs)


def submitted(animator, output, params, **kwargs):
    kwargs = {"fps": 10, "num_workers": 2, "settings": Settings(broker_url=CLOSED, result_backend=CLOSED),
              **kwargs}
    return animator.submit(output, params, **kwargs)


ENTRIES = [one_worker, two_workers, submitted]


def params_of(n):
    return [{"y": float(i)} for i in range(n)]


CASES = [
    # param_by_frame: empty, the wrong kind of thing, shorter than n_frames
    ([], {}, InvalidArgument, "param_by_frame is empty: give at least one frame's params"),
    (iter(()), {}, InvalidArgument, "param_by_frame is empty"),
    ((p for p in ()), {"n_frames": 3}, InvalidArgument, "param_by_frame is empty"),
    ("abc", {}, InvalidArgument, "param_by_frame must be an ordered iterable .* got a str"),
    ({"y": 1.0}, {}, InvalidArgument, "param_by_frame must be an ordered iterable .* got a dict"),
    ({1, 2}, {}, InvalidArgument, "param_by_frame must be an ordered iterable .* got a set"),
    (5, {}, InvalidArgument, "param_by_frame must be an iterable .* got a int"),
    (params_of(3), {"n_frames": 5}, InvalidArgument, "n_frames is 5 but param_by_frame has only 3 frames"),
    # n_frames
    (params_of(3), {"n_frames": 0}, InvalidArgument, "n_frames must be a positive int"),
    (params_of(3), {"n_frames": -2}, InvalidArgument, "n_frames must be a positive int"),
    (params_of(3), {"n_frames": 2.5}, InvalidArgument, "n_frames must be a positive int"),
    (params_of(3), {"n_frames": "3"}, InvalidArgument, "n_frames must be a positive int"),
    # fps and the other options, sizes included
    (params_of(3), {"fps": 0}, InvalidArgument, "fps must be a positive number"),
    (params_of(3), {"fps": -24}, InvalidArgument, "fps must be a positive number"),
    (params_of(3), {"fps": "fast"}, InvalidArgument, "fps must be a positive number"),
    (params_of(3), {"fps": math.nan}, InvalidArgument, "fps must be a positive number"),
    (params_of(3), {"fps": math.inf}, InvalidArgument, "fps must be finite"),
    (params_of(3), {"video_quality": -1}, InvalidArgument, "video_quality must be an int from 0"),
    (params_of(3), {"video_quality": 52}, InvalidArgument, "video_quality must be an int from 0"),
    (params_of(3), {"savefig_params": {"dpi": 0}}, InvalidArgument, r"savefig_params\['dpi'\] must be"),
    (params_of(3), {"savefig_params": {"dpi": -50}}, InvalidArgument, r"savefig_params\['dpi'\] must be"),
    (params_of(3), {"savefig_params": [("dpi", 80)]}, InvalidArgument, "savefig_params must be a dict"),
    (params_of(3), {"plotting_log_interval": 0}, InvalidArgument, "plotting_log_interval must be at least 1"),
    (params_of(3), {"saving_log_interval": -5}, InvalidArgument, "saving_log_interval must be at least 1"),
    (params_of(3), {"video_mode": "fast"}, InvalidArgument, "video_mode must be one of"),
    # how many workers and chunks, and the priority
    (params_of(3), {"num_workers": 0}, InvalidArgument, "num_workers must be a positive int"),
    (params_of(3), {"num_workers": "2"}, InvalidArgument, "num_workers must be a positive int"),
    (params_of(3), {"num_workers": 1.5}, InvalidArgument, "num_workers must be a positive int"),
    (params_of(3), {"preload_factor": 0}, InvalidArgument, "preload_factor must be at least 1"),
    (params_of(3), {"priority": 10}, InvalidArgument, "priority must be from 0 .* to 9"),
    (params_of(3), {"priority": -1}, InvalidArgument, "priority must be at least 0"),
    # frame indices
    ([IndexedFrameParams(1, {}), IndexedFrameParams(1, {})], {}, FrameIndexError, "appears twice"),
    ([IndexedFrameParams(i, {}) for i in (0, 1, 4)], {}, FrameIndexError, "2 are missing: 2-3"),
    # params no worker could receive: the frame and the path inside its params are named
    ([{"t": 0}, {"t": 1}, {"t": {"at": [datetime.datetime(2024, 1, 1)]}}], {}, UnpackableError,
     r"params of frame 2: value\['t'\]\['at'\]\[0\] is a datetime.datetime"),
]


def case_id(case):
    params, kwargs, _, _ = case
    return f"{type(params).__name__}-{'-'.join(f'{k}={v!r}' for k, v in kwargs.items()) or 'params'}"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.__name__)
@pytest.mark.parametrize("params, kwargs, error, message", CASES, ids=[case_id(c) for c in CASES])
def test_bad_input_is_refused_before_anything_runs(tmp_path, entry, params, kwargs, error, message):
    output = tmp_path / "out.mp4"
    with pytest.raises(error, match=message):
        entry(Probe(), output, params, **kwargs)
    assert CALLS == []  # setup() never ran, no frame was rendered
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.__name__)
@pytest.mark.parametrize("output", [None, 3, b"out.mp4", "", ".", "  "])
def test_a_bad_output_file_is_named(tmp_path, entry, output):
    with pytest.raises(InvalidArgument, match="output_file"):
        entry(Probe(), output, params_of(2))
    assert CALLS == []


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.__name__)
def test_a_missing_output_directory_is_refused_and_not_created(tmp_path, entry):
    output = tmp_path / "typo" / "out.mp4"
    with pytest.raises(OutputPathRefused, match=f"the directory {output.parent} does not exist; "
                                                "create it first"):
        entry(Probe(), output, params_of(2))
    assert CALLS == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.__name__)
def test_a_lambda_attribute_is_refused_with_the_advice_to_build_it_in_setup(tmp_path, entry):
    animator = Probe()
    animator.transform = lambda y: 2 * y
    with pytest.raises(UnpackableError, match=r"attribute of Probe: value\['transform'\] is a "
                                              r"builtins.function.* in setup\(\)"):
        entry(animator, tmp_path / "out.mp4", params_of(2))
    assert CALLS == []


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.__name__)
def test_a_class_defined_in_a_function_is_refused_whatever_the_worker_count(tmp_path, entry):
    class Local(Probe):
        pass

    with pytest.raises(InvalidArgument, match="defined inside a function"):
        entry(Local(), tmp_path / "out.mp4", params_of(2))
    assert CALLS == []


def test_enqueue_refuses_empty_params_before_touching_redis():
    settings = Settings(broker_url=CLOSED, result_backend=CLOSED)
    for empty in ([], ()):
        with pytest.raises(InvalidArgument, match="param_by_frame is empty"):
            enqueue(None, settings, "m:C", b"\x80", "/tmp/o.mp4", empty, RenderOptions(fps=1))
    with pytest.raises(InvalidArgument, match="n_frames must be a positive int"):
        enqueue(None, settings, "m:C", b"\x80", "/tmp/o.mp4", [{}], RenderOptions(fps=1), n_frames=0)


@pytest.mark.parametrize("n_frames", [0, -1, -1000])
def test_plan_segments_refuses_a_job_without_frames(n_frames):
    with pytest.raises(InvalidArgument, match="n_frames must be at least 1"):
        plan_segments(n_frames, 120)
    assert plan_segments(1, 120) == 1


def test_check_param_by_frame_returns_the_count_when_known():
    assert check_param_by_frame(params_of(4), None) == 4
    assert check_param_by_frame(params_of(4), 2) == 2
    assert check_param_by_frame((p for p in params_of(4)), None) is None
    assert check_param_by_frame(range(3), None) == 3


class FakeEncode:
    """Stands in for the encoder: reads the stored frames back, as the encoder would."""

    def __init__(self):
        self.frames = None

    def __call__(self, frames, output, options, on_frames, job_id):
        self.frames = list(frames)
        return RenderResult(str(output), len(self.frames), 0, 0, options.fps, "fake", 0, 0.0)


def test_one_worker_checks_a_generator_frame_by_frame_and_encodes_nothing_after_a_bad_one(
        tmp_path, monkeypatch):
    encode = FakeEncode()
    monkeypatch.setattr(serial, "encode_frames", encode)

    def params():
        yield {"t": 0}
        yield {"t": 1}
        yield {"t": datetime.date(2024, 1, 1)}
        yield {"t": 3}

    with pytest.raises(UnpackableError, match=r"params of frame 2: value\['t'\] is a datetime.date"):
        one_worker(Probe(), tmp_path / "out.mp4", params())
    assert CALLS == ["setup", 0, 1]  # frame 2 was refused before it was rendered
    assert encode.frames is None and not (tmp_path / "out.mp4").exists()


def test_one_worker_renders_every_frame_of_a_generator_once(tmp_path, monkeypatch):
    encode = FakeEncode()
    monkeypatch.setattr(serial, "encode_frames", encode)
    assert one_worker(Probe(), tmp_path / "out.mp4", (p for p in params_of(4))).n_frames == 4
    assert CALLS == ["setup", 0, 1, 2, 3]
    assert len(encode.frames) == 4
    assert not any((a == b).all() for a, b in itertools.pairwise(encode.frames))


def test_one_worker_checks_a_whole_list_before_setup(tmp_path, monkeypatch):
    monkeypatch.setattr(serial, "encode_frames", FakeEncode())
    params = [*params_of(5), {"f": print}]
    with pytest.raises(UnpackableError, match=r"params of frame 5: value\['f'\] is a builtins"):
        one_worker(Probe(), tmp_path / "out.mp4", params)
    assert CALLS == []
