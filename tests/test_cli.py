"""The `celery-animate` command and the embedded default, run as a user would."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from animators import BarCode, bar_params
from helpers import assert_video, decode, serial_frames

ROOT = Path(__file__).parent.parent
SCRIPTS = Path(__file__).parent / "scripts"


def run(args, env=None, timeout=240, cwd=ROOT):
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def plain_env():
    """The environment with no cluster configured: the embedded default applies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env["PYTHONPATH"] = str(Path(__file__).parent)
    return env


def cli(*args):
    return [sys.executable, "-m", "celery_animate.cli", *args]


def test_main_module_script_on_the_embedded_cluster(tmp_path):
    """A parallel_animate-style script: class in __main__, generator params, num_workers=2."""
    out = tmp_path / "main.mp4"
    proc = run([sys.executable, str(SCRIPTS / "main_script.py"), str(out), "20"], env=plain_env())
    assert proc.returncode == 0, proc.stderr
    frames = decode(out)
    from animators import decode_index

    assert [decode_index(f) for f in frames] == list(range(20))


def test_render_example_on_the_embedded_cluster(tmp_path):
    out = tmp_path / "wave.mp4"
    proc = run(cli("render", "examples/wave.py:WaveAnimation", "-o", str(out), "--frames", "24",
                   "--fps", "12", "--workers", "2"), env=plain_env())
    assert proc.returncode == 0, proc.stderr
    assert f"{out}: 24 frames, 640x480, 12 fps, libx264" in proc.stdout
    frames = decode(out)
    assert len(frames) == 24 and frames[0].shape == (480, 640, 3)
    # The title changes every frame, so consecutive frames differ.
    assert all((a != b).any() for a, b in itertools.pairwise(frames))


def test_a_frame_range_renders_a_preview_as_a_gif(tmp_path):
    out = tmp_path / "preview.gif"
    proc = run(cli("render", "examples/wave.py:WaveAnimation", "-o", str(out), "--frames", "24",
                   "--fps", "12", "--workers", "1", "--frame-range", "::4", "--no-progress"),
               env=plain_env())
    assert proc.returncode == 0, proc.stderr
    assert f"{out}: 6 frames, 640x480, 12.5 fps, gif" in proc.stdout
    assert len(decode(out)) == 6
    bad = run(cli("render", "examples/wave.py:WaveAnimation", "-o", str(out), "--frame-range", "4"),
              env=plain_env())
    assert bad.returncode == 2 and "is not START:STOP or START:STOP:STEP" in bad.stderr


def test_several_outputs_and_stills_from_the_command_line(tmp_path):
    mp4, gif = tmp_path / "wave.mp4", tmp_path / "wave.gif"
    proc = run(cli("render", "examples/wave.py:WaveAnimation", "-o", str(mp4), "-o", str(gif),
                   "--still", "3", "--frames", "8", "--fps", "8", "--workers", "1",
                   "--no-progress"), env=plain_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1:] == [str(gif), str(tmp_path / "wave-00003.png")]
    assert len(decode(mp4)) == len(decode(gif)) == 8
    assert (tmp_path / "wave-00003.png").read_bytes().startswith(b"\x89PNG")


def test_cli_errors_are_one_clear_line(tmp_path):
    proc = run(cli("render", "examples/wave.py:Missing", "-o", str(tmp_path / "x.mp4"),
                   "--frames", "2"), env=plain_env())
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "celery-animate: error: examples.wave has no Animator subclass named 'Missing'"
    )
    proc = run(cli("submit", "examples/wave.py:WaveAnimation", "-o", "x.mp4", "--frames", "2"),
               env=plain_env())
    assert proc.returncode == 2 and "set CELERY_BROKER_URL" in proc.stderr


@pytest.mark.cluster
def test_submit_status_wait_against_the_cluster(cluster, tmp_path):
    out = tmp_path / "cli.mp4"
    params = tmp_path / "params.json"
    frame_params = [{"y": p["y"].tolist()} for p in bar_params(10)]
    params.write_text(json.dumps(frame_params))
    proc = run(cli("submit", "animators.py:BarCode", "-o", str(out), "--params", str(params),
                   "--fps", "5", "--quality", "10"), env=cluster.env, cwd=Path(__file__).parent)
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    waited = run(cli("wait", job_id, "--timeout", "120"), env=cluster.env)
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.startswith(f"{out}: 10 frames, 256x128, 5 fps")
    status = run(cli("status", job_id), env=cluster.env)
    assert status.stdout.strip() == "done rendered 10/10 encoded 10/10"
    assert_video(out, serial_frames(BarCode(), frame_params))


WAVE = "examples/wave.py:WaveAnimation"


@pytest.fixture
def in_process(monkeypatch):
    """Run ``main()`` here, with no cluster configured, from the repository root; return
    ``(status, stderr)``. Nothing these calls do gets as far as starting one."""
    from celery_animate.cli import main

    for name in [k for k in os.environ if k.startswith("CELERY_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)

    def call(*args):
        return main(list(args))

    return call


@pytest.mark.parametrize("args, words", [
    (("--frames", "0"), "--frames must be a positive int"),
    (("--frames", "-3"), "--frames must be a positive int"),
    (("--frames", "2", "--fps", "0"), "fps must be a positive number"),
    (("--frames", "2", "--fps", "-30"), "fps must be a positive number"),
    (("--frames", "2", "--fps", "nan"), "fps must be a positive number"),
    (("--frames", "2", "--workers", "0"), "num_workers must be a positive int"),
    (("--frames", "2", "--quality", "60"), "video_quality must be an int from 0"),
    (("--frames", "2", "--preset", "Slow Please"), "video_preset must be"),
    (("--frames", "2", "--init", "{oops"), "--init is not valid JSON"),
    (("--frames", "2", "--init", "[1, 2]"), "--init must be a JSON object"),
    (("--params", "no/such/params.json"), "--params no/such/params.json: no such file"),
])
@pytest.mark.parametrize("command", ["render", "submit"])
def test_bad_render_arguments_are_named_before_anything_runs(in_process, capsys, tmp_path, command, args,
                                                             words):
    out = tmp_path / "never.mp4"
    assert in_process(command, WAVE, "-o", str(out), *args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("celery-animate: error: ") and "\n" not in err and words in err, err
    assert not out.exists()


@pytest.mark.parametrize("content, words", [
    ("[]", "param_by_frame is empty: give at least one frame's params"),
    ('{"y": 1}', "must hold a list with one entry per frame, not a dict"),
    ("[1, 2", "cannot be read"),
])
@pytest.mark.parametrize("command", ["render", "submit"])
def test_a_bad_params_file_is_named(in_process, capsys, tmp_path, command, content, words):
    params = tmp_path / "params.json"
    params.write_text(content)
    out = tmp_path / "never.mp4"
    assert in_process(command, WAVE, "-o", str(out), "--params", str(params), "--workers", "1") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("celery-animate: error: ") and words in err, err
    assert not out.exists()


@pytest.mark.parametrize("command", ["render", "submit"])
def test_an_output_that_cannot_be_written_is_refused_before_rendering(in_process, capsys, tmp_path,
                                                                      command):
    typo = tmp_path / "vidoes" / "wave.mp4"
    assert in_process(command, WAVE, "-o", str(typo), "--frames", "2") == 2
    assert capsys.readouterr().err.strip() == (
        f"celery-animate: error: cannot write {typo}: the directory {typo.parent} does not exist; "
        f"create it first (mkdir -p '{typo.parent}') or correct the path")
    assert list(tmp_path.iterdir()) == []
    # /proc passes a permission check (as root) but takes no file: not "disk full" after rendering.
    assert in_process(command, WAVE, "-o", "/proc/wave.mp4", "--frames", "2") == 2
    assert capsys.readouterr().err.startswith(
        "celery-animate: error: cannot write /proc/wave.mp4: creating a file in /proc failed")


def test_a_missing_animator_file_is_named(in_process, capsys, tmp_path):
    assert in_process("render", "examples/nope.py:Wave", "-o", str(tmp_path / "x.mp4"),
                      "--frames", "2") == 2
    assert capsys.readouterr().err.strip() == "celery-animate: error: no such file: examples/nope.py"


@pytest.mark.parametrize("args, words", [
    (("jobs", "--limit", "0"), "argument --limit: must be at least 1, got 0"),
    (("jobs", "--limit", "many"), "argument --limit: 'many' is not a whole number"),
    (("wait", "0" * 32, "--timeout", "-1"), "argument --timeout: must be 0 or more seconds"),
    (("wait", "0" * 32, "--timeout", "soon"), "argument --timeout: 'soon' is not a number of seconds"),
])
def test_bad_numbers_are_refused_by_the_parser(in_process, capsys, args, words):
    with pytest.raises(SystemExit) as info:
        in_process(*args)
    assert info.value.code == 2
    assert words in capsys.readouterr().err
