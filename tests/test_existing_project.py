"""An existing Celery project (examples/existing_project) enqueues a render and follows it.

Its own app and worker (queue ``reports``) run beside celery-animate's workers
on one broker; another service talks to it by task name only, as services do.
"""

import subprocess
import sys
import time

from celery import Celery
from helpers import decode, wait_until
from workers import ROOT, stop


def test_a_project_task_enqueues_a_render_and_another_follows_it(cluster, tmp_path):
    log = tmp_path / "reports.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "examples.existing_project.app", "worker",
         "-Q", "reports", "-c", "1", "--pool", "prefork", "--hostname", "reports@%h",
         "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        env=cluster.env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    caller = Celery("caller", broker=cluster.settings.broker_url,
                    backend=cluster.settings.result_backend)
    try:
        wait_until(lambda: any(host.startswith("reports@") for reply in
                               (caller.control.ping(timeout=0.5) or []) for host in reply),
                   message="the project's worker", show=log.read_text)
        output = tmp_path / "weekly.mp4"
        job_id = caller.send_task("reports.weekly_video", args=[str(output), 24],
                                  queue="reports").get(timeout=60)
        deadline = time.monotonic() + 120
        status = {}
        while time.monotonic() < deadline:
            status = caller.send_task("reports.video_status", args=[job_id],
                                      queue="reports").get(timeout=30)
            if status["state"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.2)
        assert status["state"] == "done", status
        assert status["video"] == str(output)
        assert len(decode(output)) == 24
    finally:
        stop(worker)
    # Each app ran only its own tasks: celery-animate's on its workers, the project's on its own.
    reports_log = log.read_text()
    assert "Task reports.weekly_video[" in reports_log
    assert "Task celery_animate." not in reports_log
    assert all("Task reports." not in path.read_text() for path in cluster.logs)
