"""What a job spec may ask for in outputs and stills: a forged record asks for more."""

import pytest

from celery_animate.errors import InvalidArgument
from celery_animate.formats import MAX_OUTPUTS, still_name
from celery_animate.job.spec import JobSpec
from celery_animate.options import RenderOptions


def fields(**changes):
    spec = JobSpec("m:C", b"\x80", "/out/run.mp4", 40, 4, RenderOptions(fps=10), 40)
    return {**vars(spec), "options": vars(spec.options), **changes}


def test_a_spec_of_an_older_client_has_one_output_and_no_stills():
    old = fields()
    del old["extra_outputs"], old["stills"]
    spec = JobSpec.from_fields(old)
    assert spec.outputs == ["/out/run.mp4"]


@pytest.mark.parametrize("changes", [
    {"extra_outputs": ["/out/x.gif"] * MAX_OUTPUTS},  # one more than the first output allows
    {"extra_outputs": [""]},
    {"extra_outputs": "/out/x.gif"},
    {"extra_outputs": [7]},
    {"stills": [40]},
    {"stills": [-1]},
    {"stills": [1, 1]},
    {"stills": [True]},
    {"stills": list(range(40)) * 3},
    {"extra_outputs": ["/out/x.gif"], "segment_frames": 10},
])
def test_a_forged_spec_asking_for_more_is_refused(changes):
    with pytest.raises(InvalidArgument):
        JobSpec.from_fields(fields(**changes))


def test_stills_are_named_beside_the_first_output_by_their_animation_frame():
    spec = JobSpec.from_fields(fields(stills=[0, 3], options={"fps": 10, "frame_start": 100,
                                                               "frame_step": 10}))
    assert spec.outputs == ["/out/run.mp4", "/out/run-00100.png", "/out/run-00130.png"]
    assert still_name("s3://bucket/a/run.mp4", 7) == "s3://bucket/a/run-00007.png"
    assert still_name("run", 7) == "run-00007.png"
