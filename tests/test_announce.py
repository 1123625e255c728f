"""A job's end is announced once: its ``on_done`` task and its signed webhook, with real workers.

A split cluster (render and encode nodes) allows webhooks to a real HTTP
server this module starts on 127.0.0.1; a worker of the user's own app
(``announce_app``, its own queue) runs the ``on_done`` task, which appends what
it got to a Redis list. Each end (done, failed, cancelled) must reach both
exactly once, with the right fields and a valid signature; a receiver that is
down, then up, or too slow, still gets it; what a forger writes into a record
(a URL outside the allow-list, an on_done with options) is refused at the
worker and leaves the job's state as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import announce_app
import pytest
from animators import BarCode, bar_params
from celery import signature
from helpers import wait_until
from webhooks import Receiver, free_port
from workers import ROOT, SPLIT, private_cluster, stop

from celery_animate import JobCancelled, RenderFailed, keys
from celery_animate.announcement import verify
from celery_animate.client.render_job import RenderJob
from celery_animate.errors import InvalidArgument

pytestmark = pytest.mark.cluster

SECRET = "test-announce-secret"
#: Seconds of one webhook attempt before it gives up (the slow receiver takes longer).
TIMEOUT = 2
#: Seconds to keep looking after an announcement arrived, for a second one that must not come:
#: several watchdog ticks of every worker, and a webhook's first retry.
SETTLE = 4


@pytest.fixture(scope="module")
def receiver():
    server = Receiver(slow_seconds=2 * TIMEOUT)
    yield server
    server.close()


@pytest.fixture(scope="module")
def down_port():
    """A port allowed for webhooks where nothing listens until a test starts a receiver there."""
    return free_port()


@pytest.fixture(scope="module")
def cluster(receiver, down_port, tmp_path_factory):
    """celery-animate's render and encode nodes, and a worker of the user's own app."""
    log_dir = tmp_path_factory.mktemp("announce")
    env = {"CELERY_ANIMATE_WEBHOOK_ALLOW": f"{receiver.url},http://127.0.0.1:{down_port}/",
           "CELERY_ANIMATE_WEBHOOK_SECRET": SECRET,
           "CELERY_ANIMATE_WEBHOOK_TIMEOUT": str(TIMEOUT),
           "CELERY_ANIMATE_ALLOWED_ANIMATORS": "animators"}
    with private_cluster(log_dir, SPLIT, env=env) as private:
        log = log_dir / "user.log"
        user = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "announce_app", "worker", "-Q", announce_app.QUEUE,
             "--pool=solo", "--hostname=user@%h", "--without-gossip", "--without-mingle",
             "--loglevel=INFO"],
            env=private.env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            private.logs["user"], private.processes["user"] = log, user
            wait_until(lambda: b" ready." in log.read_bytes(), timeout=60,
                       message="the user's worker", show=log.read_text)
            yield private
        finally:
            stop(user)


def on_done(tag: str):
    """The user's on_done: their own task, on their own queue, with one argument of their own."""
    return signature(announce_app.TASK, args=(tag,)).set(queue=announce_app.QUEUE)


def received(cluster, job_id: str) -> list[dict]:
    """What the user's task got for ``job_id``."""
    calls = [json.loads(raw) for raw in cluster.redis().lrange(announce_app.RECEIVED, 0, -1)]
    return [call for call in calls if call["end"]["job_id"] == job_id]


def check_fields(end: dict, job: RenderJob, state: str, n_frames: int) -> None:
    assert end["job_id"] == job.id and end["state"] == state
    assert end["n_frames"] == n_frames and end["url"] is None
    assert end["output"].endswith("video.mp4") and end["seconds"] >= 0
    if state == "failed":
        assert end["error_type"] == "ZeroDivisionError" and end["error_message"] == (
            "boom at frame 2 (raised by update() for frame 2)")
    else:
        assert "error_type" not in end and "error_message" not in end


def check_signed(request: tuple[str, dict[str, str], str]) -> dict:
    _, headers, body = request
    assert headers["Content-Type"] == "application/json"
    assert headers["X-CeleryAnimate-Signature"].startswith("sha256=")
    assert verify(SECRET, headers["X-CeleryAnimate-Timestamp"], body,
                  headers["X-CeleryAnimate-Signature"], now=time.time())
    assert not verify("not-the-secret", headers["X-CeleryAnimate-Timestamp"], body,
                      headers["X-CeleryAnimate-Signature"], now=time.time())
    return json.loads(body)


@pytest.mark.parametrize("end", ["done", "failed", "cancelled"])
def test_each_end_is_announced_once_by_each_way(cluster, receiver, tmp_path, end):
    path = f"/hook/{end}"
    n_frames = 200 if end == "cancelled" else 12
    animator = BarCode(tag=f"announce-{end}", fail_at=2 if end == "failed" else None)
    job = animator.submit(tmp_path / "video.mp4", bar_params(n_frames), fps=10,
                          settings=cluster.settings, on_done=on_done(end),
                          webhook=receiver.url.rstrip("/") + path)
    if end == "cancelled":
        assert job.webhook_status() == {"state": "pending"}
        assert job.on_done_status() == {"state": "pending"}
        assert job.cancel() is True
    expected = {"done": None, "failed": RenderFailed, "cancelled": JobCancelled}[end]
    if expected is None:
        job.wait(timeout=120)
    else:
        with pytest.raises(expected):
            job.wait(timeout=120)

    wait_until(lambda: receiver.to(path) and received(cluster, job.id), timeout=30,
               message="the webhook and the on_done task",
               show=lambda: (job.webhook_status(), job.on_done_status()))
    time.sleep(SETTLE)  # a second announcement, if any, would have come by now
    [request] = receiver.to(path)
    check_fields(check_signed(request), job, end, n_frames)
    [call] = received(cluster, job.id)
    check_fields(call["end"], job, end, n_frames)
    assert call["args"] == [end] and call["kwargs"] == {}
    assert json.loads(request[2]) == call["end"]  # both ways say the same

    status = job.webhook_status()
    assert status["state"] == "delivered" and status["http_status"] == 200 and status["attempts"] == 1
    assert job.on_done_status()["state"] == "sent"
    assert job.progress().state == end
    assert cluster.redis().zscore(keys.ANNOUNCE_JOBS, job.id) is None


def test_a_receiver_that_is_down_gets_it_once_it_is_up(cluster, down_port, tmp_path):
    job = BarCode(tag="down").submit(tmp_path / "video.mp4", bar_params(6), fps=10,
                                     settings=cluster.settings,
                                     webhook=f"http://127.0.0.1:{down_port}/late")
    job.wait(timeout=120)
    # Connection refused: the attempt is recorded, and the delivery waits for its retry.
    wait_until(lambda: (job.webhook_status() or {}).get("attempts", 0) >= 1, timeout=30,
               message="a first, failed attempt", show=job.webhook_status)
    first = job.webhook_status()
    assert first["state"] == "pending" and "Connection" in first["reason"]
    late = Receiver(down_port, slow_seconds=2 * TIMEOUT)
    try:
        wait_until(lambda: job.webhook_status()["state"] != "pending", timeout=70,
                   message="the retried delivery", show=job.webhook_status)
        time.sleep(SETTLE)
        status = job.webhook_status()
        assert status["state"] == "delivered" and status["attempts"] >= 2
        [request] = late.to("/late")
        assert check_signed(request)["job_id"] == job.id
    finally:
        late.close()
    assert job.progress().state == "done"


def test_a_receiver_slower_than_the_timeout_is_tried_again(cluster, receiver, tmp_path):
    job = BarCode(tag="slow").submit(tmp_path / "video.mp4", bar_params(6), fps=10,
                                     settings=cluster.settings, webhook=f"{receiver.url}slow")
    job.wait(timeout=120)
    wait_until(lambda: (job.webhook_status() or {}).get("state") == "delivered", timeout=60,
               message="the delivery after a timed-out attempt", show=job.webhook_status)
    status = job.webhook_status()
    assert status["attempts"] >= 2 and status["http_status"] == 200
    assert len(receiver.to("/slow")) >= 2  # the timed-out POST, then the one that was answered
    assert all(check_signed(request)["job_id"] == job.id for request in receiver.to("/slow"))
    assert job.progress().state == "done"


def test_a_url_outside_the_allow_list_is_refused_at_submit(cluster, tmp_path):
    client = cluster.redis()
    before = client.zcard(keys.JOB_INDEX)
    for url in ("http://127.0.0.1:1/elsewhere", "https://example.com/", "file:///etc/passwd"):
        with pytest.raises(InvalidArgument, match="webhook"):
            BarCode().submit(tmp_path / "video.mp4", bar_params(4), fps=10,
                             settings=cluster.settings, webhook=url)
    with pytest.raises(InvalidArgument, match="link"):
        BarCode().submit(tmp_path / "video.mp4", bar_params(4), fps=10, settings=cluster.settings,
                         on_done=on_done("x").set(link=signature("announce_app.other")))
    assert client.zcard(keys.JOB_INDEX) == before  # nothing was enqueued


def test_what_a_forger_writes_into_a_record_is_refused_at_the_worker(cluster, receiver, tmp_path):
    job = BarCode(tag="forged").submit(tmp_path / "video.mp4", bar_params(200), fps=10,
                                       settings=cluster.settings)
    client = cluster.redis()
    forged_on_done = {"task": announce_app.TASK, "queue": announce_app.QUEUE, "args": ["forged"],
                      "kwargs": {}, "options": {"serializer": "pickle", "link": "x"}}
    client.hset(keys.job(job.id), mapping={
        "webhook": f"http://127.0.0.2:{receiver.port}/forged",  # not an allowed prefix
        "on_done": json.dumps(forged_on_done)})
    assert job.cancel() is True
    wait_until(lambda: (job.webhook_status() or {}).get("state") == "refused"
               and (job.on_done_status() or {}).get("state") == "refused", timeout=30,
               message="both refusals", show=lambda: (job.webhook_status(), job.on_done_status()))
    time.sleep(SETTLE)
    assert "CELERY_ANIMATE_WEBHOOK_ALLOW" in job.webhook_status()["reason"]
    assert "exactly" in job.on_done_status()["reason"]
    assert receiver.to("/forged") == [] and received(cluster, job.id) == []
    assert job.progress().state == "cancelled"
    # What the CLI shows.
    status = subprocess.run([sys.executable, "-m", "celery_animate.cli", "status", job.id],
                            env=cluster.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert "cancelled" in status.stdout and "webhook refused" in status.stdout
    assert "on_done refused" in status.stdout


def params_file(tmp_path, n_frames: int):
    path = tmp_path / "params.json"
    path.write_text(json.dumps([{"y": [float(v) for v in p["y"]]} for p in bar_params(n_frames)]))
    return path


def test_the_command_line_submits_with_a_webhook_and_status_shows_its_delivery(cluster, receiver,
                                                                               tmp_path):
    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "celery_animate.cli", *args], env=cluster.env,
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    job_id = cli("submit", "animators:BarCode", "-o", str(tmp_path / "cli.mp4"), "--frames", "6",
                 "--fps", "10", "--params", str(params_file(tmp_path, 6)),
                 "--webhook", receiver.url + "cli")
    wait_until(lambda: receiver.to("/cli"), timeout=60, message="the webhook")
    [request] = receiver.to("/cli")
    assert check_signed(request)["job_id"] == job_id
    wait_until(lambda: "webhook delivered (HTTP 200)" in cli("status", job_id), timeout=15,
               message="status to show the delivery")
    assert cli("status", job_id).startswith("done ")
