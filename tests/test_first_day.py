"""A new user's first day against real processes: workers that cannot import the animator, a
failed job's status, two workers under one node name, a setup() that fails, a closed pipe."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from animators import BarCode, bar_params
from helpers import wait_until
from workers import WorkerSpec

from celery_animate import RenderFailed
from celery_animate.worker.app import app_for

TESTS = Path(__file__).parent
ROOT = TESTS.parent

#: An animator in a module that only the client's folder holds.
ONLY_HERE = '''
from matplotlib.figure import Figure

from celery_animate import Animator


class OnlyHere(Animator):
    def setup(self):
        fig = Figure(figsize=(0.64, 0.32), dpi=100)
        self.text = fig.text(0.5, 0.5, "")
        return fig

    def update(self, frame_idx, params):
        self.text.set_text(str(frame_idx))


def param_by_frame(n_frames):
    return [{} for _ in range(n_frames)]
'''


def cli(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "celery_animate.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=180)


def test_a_worker_that_cannot_import_the_animator_says_which_module_and_what_to_do(
        cluster, extra_workers, tmp_path):
    # A render worker started elsewhere (the repository's root), without only_here.py.
    extra_workers("render-elsewhere", "elsewhere", CELERY_ANIMATE_ALLOWED_ANIMATORS="")
    (tmp_path / "only_here.py").write_text(ONLY_HERE)
    env = {**cluster.env, "CELERY_ANIMATE_RENDER_QUEUE": "render-elsewhere",
           "CELERY_ANIMATE_ALLOWED_ANIMATORS": ""}
    submitted = cli("submit", "only_here:OnlyHere", "-o", str(tmp_path / "x.mp4"), "--frames", "3",
                    env=env, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    why = ("celery_animate.errors.AnimatorNotImportable: cannot import animator only_here:OnlyHere: "
           "no module named 'only_here' on ")
    fix = ("Workers import the animator's module by name: add the directory that holds "
           "only_here.py to the worker's PYTHONPATH, start the worker as `python -m celery ...` "
           "from that directory (plain `celery` does not keep it on the path), or install your "
           "package on the worker")
    waited = cli("wait", job_id, "--timeout", "60", env=env)
    assert waited.returncode == 1, waited.stderr
    assert f"job {job_id} failed: {why}" in waited.stderr and fix in waited.stderr
    assert f"(current directory {ROOT})" in waited.stderr
    status = cli("status", job_id, env=env)
    assert status.returncode == 0, status.stderr
    state, error, hint = status.stdout.strip().splitlines()
    assert state.startswith("failed rendered 0/3")
    assert error.startswith(f"error: {why}") and error.endswith(fix)
    assert hint == f"(`celery-animate wait {job_id}` shows the worker's traceback)"
    # doctor finds it out before any job does, and says the same.
    doctor = cli("doctor", "--animator", "only_here:OnlyHere", env=env, cwd=tmp_path)
    assert doctor.returncode == 1
    (problem,) = [line for line in doctor.stdout.splitlines() if line.startswith("PROBLEM")]
    assert problem.startswith("PROBLEM  animator: on ") and "AnimatorNotImportable" in problem
    assert fix in problem and f"a render worker started in {ROOT}" in problem
    # A worker that can import it says where from.
    doctor = cli("doctor", "--animator", "animators:BarCode", env=cluster.env)
    assert doctor.returncode == 0, doctor.stdout
    assert "animator: animators:BarCode imports on " in doctor.stdout
    assert str(TESTS / "animators.py") in doctor.stdout


def test_a_failed_update_names_its_frame_and_status_says_why(use_cluster, tmp_path):
    job = BarCode(tag="first-day", fail_at=3).submit(tmp_path / "x.mp4", bar_params(8), fps=8)
    with pytest.raises(RenderFailed) as info:
        job.wait(timeout=60)
    assert info.value.exc_type == "ZeroDivisionError"
    assert info.value.exc_message.startswith("boom at frame 3")
    # The frame is a note on the exception, which the worker's traceback ends with.
    assert info.value.remote_traceback.rstrip().endswith("\nraised by update() for frame 3")
    status = cli("status", job.id, env=use_cluster.env)
    assert status.stdout.splitlines()[1].startswith("error: ZeroDivisionError: boom at frame 3")


def test_doctor_names_two_workers_that_share_a_node_name(make_cluster):
    """Two workers on one machine, both started without --hostname: Celery's own default name."""
    private = make_cluster(workers=())
    for spec in (WorkerSpec("render", "same-render", args=("--hostname=celery@%h",)),
                 WorkerSpec("gpu", "same-gpu", args=("--hostname=celery@%h",))):
        private.launch(spec)
    app = app_for(private.settings)
    wait_until(lambda: len(app.control.broadcast("ping", reply=True, timeout=0.5) or []) == 2,
               message="both workers to answer")
    doctor = cli("doctor", env=private.env)
    assert "DuplicateNodenameWarning" not in doctor.stderr, doctor.stderr
    assert "no worker consumes" not in doctor.stdout, doctor.stdout
    (problem,) = [line for line in doctor.stdout.splitlines() if line.startswith("PROBLEM")]
    assert problem.startswith("PROBLEM  workers: render: 1 worker(s); gpu: 1 worker(s), but 2 "
                              "workers answer as celery@")
    assert "--hostname render@%h" in problem and "--hostname gpu@%h" in problem
    assert [line.split(":")[0] for line in doctor.stdout.splitlines()] == [
        "ok       broker", "ok       result backend", "ok       frame store", "PROBLEM  workers",
        "ok       encoder"]


def test_a_failing_setup_shows_its_traceback_once_on_the_embedded_default(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("""
import sys
from animators import SetupFails, bar_params
SetupFails().make_video(sys.argv[1], bar_params(8), fps=8, num_workers=2, disable_progress_bar=True)
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "CA_TEST_"))}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "out.mp4")],
                          env={**env, "PYTHONPATH": str(TESTS)}, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 1
    assert "RuntimeError: no data file for the background" in proc.stderr
    # Each of the two processes' pre-warm failed too: neither says so; the job's failure does.
    assert proc.stderr.count('raise RuntimeError("no data file for the background")') == 1, proc.stderr
    assert "pre-warm" not in proc.stderr


def test_a_failing_prewarm_is_one_line_in_the_workers_log(cluster, extra_workers):
    worker = extra_workers("render-prewarm", "prewarm-fails", concurrency=2,
                           CELERY_ANIMATE_RENDER_QUEUE="render-prewarm",
                           CELERY_ANIMATE_PREWARM="animators:SetupFails")
    line = ("could not pre-warm animator animators:SetupFails (RuntimeError: no data file for the "
            "background); a job that uses it fails with the whole traceback")
    wait_until(lambda: line in worker.log.read_text(), message="the pre-warm to fail",
               show=worker.log.read_text)
    stats = app_for(cluster.settings).control.inspect(timeout=2).stats() or {}
    (pool,) = [s["pool"] for node, s in stats.items() if node.startswith("prewarm-fails@")]
    assert len(pool["processes"]) == 2  # both processes started, and both failed to pre-warm
    time.sleep(2)  # the second one's start is not awaited by anything: give it time to speak
    log = worker.log.read_text()
    assert log.count("pre-warm") == 1 and "Traceback" not in log, log


def test_a_reader_that_goes_away_ends_the_command_quietly(redis_server):
    """`celery-animate jobs | head -1`: a pipe whose reader has gone, as the shell leaves it."""
    args = ("jobs",)
    read, write = os.pipe()
    os.close(read)  # every write to the pipe now fails with EPIPE
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    try:
        proc = subprocess.run([sys.executable, "-m", "celery_animate.cli", *args], stdout=write,
                              stderr=subprocess.PIPE, env={**env, "CELERY_BROKER_URL": redis_server.url},
                              text=True, timeout=120)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")
    whole = subprocess.run([sys.executable, "-m", "celery_animate.cli", *args], capture_output=True,
                           env={**env, "CELERY_BROKER_URL": redis_server.url}, text=True, timeout=120)
    assert whole.returncode == 0 and whole.stdout and whole.stderr == "", whole.stderr
