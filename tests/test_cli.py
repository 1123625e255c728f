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
    return [sys.executable, "-m", "celery_animate.cli.main", *args]


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
