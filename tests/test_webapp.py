"""The web example end to end in a real headless Chromium, against real workers.

Two set-ups: videos in a directory the app shares with the workers (served by the
app), and videos in a real S3 server (SeaweedFS, tests/s3.py) that the workers upload
to and the browser fetches from through URLs the app presigns, the app learning of
each job's end from the workers' signed webhook; the app and the workers then share
only Redis and the object store.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
from helpers import MAX_MEAN_ERROR, decode, serial_frames, wait_until
from s3 import SeaweedS3
from workers import ROOT, SPLIT, cluster_env, private_cluster, stop

from celery_animate.announcement import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from celery_animate.client.embedded.redis_server import free_port
from celery_animate.client.render_job import RenderJob
from examples.wave import BlittedWaveAnimation
from examples.wave import param_by_frame as wave_params

pytestmark = pytest.mark.cluster

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOT = ROOT / "docs" / "webapp.png"
BUCKET = "renders"
SECRET = "test-webapp-webhook-secret"


@contextlib.contextmanager
def serve_webapp(env: Mapping[str, str], cwd: Path, log: Path, port: int | None = None
                 ) -> Iterator[str]:
    """The web app under gunicorn, as docker-compose.yml runs it; yields its base URL."""
    port = port or free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "examples.webapp.app:app"],
        env=dict(env), cwd=cwd, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def up():
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return True
        except OSError:
            return False

    try:
        wait_until(up, timeout=30, message="the web app to answer", show=log.read_text)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


@pytest.fixture
def webapp(cluster, tmp_path):
    env = {**cluster.env, "CELERY_ANIMATE_WEB_OUTPUT": str(tmp_path / "videos")}
    with serve_webapp(env, ROOT, tmp_path / "web.log") as url:
        yield url


@pytest.fixture
def s3(tmp_path_factory):
    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def object_webapp(s3, tmp_path):
    """Workers that upload to ``s3://renders/web/`` and POST each job's end to the web app, and
    the web app, each with directories of its own (as on separate machines)."""
    port = free_port()
    shared = {**s3.env(), "CELERY_ANIMATE_WEBHOOK_ALLOW": f"http://127.0.0.1:{port}/hooks/",
              "CELERY_ANIMATE_WEBHOOK_SECRET": SECRET}
    workers, web = tmp_path / "workers", tmp_path / "web"
    for folder in (workers / "tmp", web / "tmp"):
        folder.mkdir(parents=True)
    worker_env = {**shared, "CELERY_ANIMATE_OUTPUT_ROOT": f"s3://{BUCKET}/web/",
                  "CELERY_ANIMATE_ALLOWED_ANIMATORS": "examples", "TMPDIR": str(workers / "tmp"),
                  "CELERY_ANIMATE_STAGING_DIR": str(workers / "staging")}
    with private_cluster(workers, SPLIT, env=worker_env) as cluster:
        env = cluster_env(cluster.server.url, **shared, TMPDIR=str(web / "tmp"),
                          CELERY_ANIMATE_WEB_OUTPUT=f"s3://{BUCKET}/web/",
                          CELERY_ANIMATE_WEB_WEBHOOK=f"http://127.0.0.1:{port}/hooks/job-end")
        with serve_webapp(env, web, tmp_path / "web.log", port) as url:
            yield url, web, cluster


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing: .ci/run installs them with apt-get")
        pytest.skip("needs Debian's chromium and chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=900,900", f"--user-data-dir={tmp_path / 'chromium'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER),
                              options=options)
    yield driver
    driver.quit()


def render_in_page(browser, url: str, frames: int) -> list[float]:
    """Pick the wave and ``frames``, press Render, and follow the bar to 100; its values seen."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(url)
    Select(browser.find_element(By.ID, "animation")).select_by_value("wave")
    field = browser.find_element(By.ID, "frames")
    field.clear()
    field.send_keys(str(frames))
    browser.find_element(By.ID, "submit").click()
    seen = []

    def finished(driver):
        seen.append(float(driver.find_element(By.ID, "progress").get_attribute("value")))
        return seen[-1] >= 100

    WebDriverWait(browser, 120, poll_frequency=0.1).until(finished)
    return seen


def played(browser) -> tuple[str, float]:
    """The source and duration of the video once the page shows it and it has loaded."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "const v = document.getElementById('video');"
        "return v.readyState >= 1 && !v.hidden ? [v.currentSrc, v.duration] : null;"))


def test_pick_render_watch_progress_and_play(webapp, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    seen = render_in_page(browser, webapp, 45)
    assert seen[-1] == 100 and seen == sorted(seen)  # the bar only moves forward
    # The first frame is the video's poster: a thumbnail 320 pixels wide, served by the app.
    # (That it is there while the job runs is checked in test_pipeline, with a slow job: this
    # one may finish between two polls of the page.)
    width = WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "const v = document.getElementById('video'); if (!v.poster) return null;"
        "const i = new Image(); i.src = v.poster;"
        "return i.complete && i.naturalWidth ? i.naturalWidth : null;"))
    assert width == 320
    source, duration = played(browser)
    assert source.startswith(webapp + "/videos/")  # served by the app from the shared directory
    assert abs(duration - 45 / 30) < 0.1  # frames / fps
    assert "done: rendered 45/45, encoded 45/45" in browser.find_element(By.ID, "status").text
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))


def post_hook(url: str, body: str, secret: str, stamp: float) -> int:
    stamp = int(stamp)
    request = urllib.request.Request(
        url + "/hooks/job-end", data=body.encode(), method="POST",
        headers={"Content-Type": "application/json", TIMESTAMP_HEADER: str(stamp),
                 SIGNATURE_HEADER: sign(secret, stamp, body)})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_with_object_outputs_the_page_learns_the_end_by_webhook_and_plays_a_presigned_url(
        object_webapp, browser, s3, tmp_path):
    from selenium.webdriver.common.by import By

    url, web_dir, cluster = object_webapp
    frames = 30
    seen = render_in_page(browser, url, frames)
    assert seen == sorted(seen)
    source, duration = played(browser)
    # The browser fetched the video from the store itself, through a URL the app presigned.
    assert source.startswith(f"{s3.endpoint}/{BUCKET}/web/wave-") and ".mp4?" in source
    assert "X-Amz-Signature=" in source and "X-Amz-Expires=3600" in source
    assert abs(duration - frames / 30) < 0.1
    assert f"done: rendered {frames}/{frames}, encoded {frames}/{frames}" in \
        browser.find_element(By.ID, "status").text

    # The app learned of the end from the workers' signed webhook.
    job_id = browser.find_element(By.ID, "link").get_attribute("href").rsplit("/", 1)[1][:-4]
    with urllib.request.urlopen(f"{url}/jobs/{job_id}", timeout=10) as response:
        status = json.load(response)
    assert status["state"] == "done" and status["ended_by"] == "webhook"
    job = RenderJob(job_id, cluster.settings)  # the worker records the delivery once answered
    wait_until(lambda: job.webhook_status()["state"] == "delivered", timeout=10,
               message="the webhook's delivery", show=job.webhook_status)

    # What the presigned URL serves is the whole video; the app's link redirects to the same.
    video = tmp_path / "played.mp4"
    with urllib.request.urlopen(source, timeout=30) as response:
        video.write_bytes(response.read())
    got = decode(video)
    want = serial_frames(BlittedWaveAnimation(), wave_params(frames))
    assert len(got) == frames
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a.shape == b.shape
        assert np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() < 2 * MAX_MEAN_ERROR, i
    with urllib.request.urlopen(f"{url}/videos/{job_id}.mp4", timeout=30) as response:
        assert response.url.startswith(f"{s3.endpoint}/{BUCKET}/web/wave-")
        assert response.read() == video.read_bytes()
    key = source[len(f"{s3.endpoint}/{BUCKET}/"):].split("?")[0]
    assert s3.get(BUCKET, key) == video.read_bytes()
    # Nothing of the video reached the app's machine but through the browser.
    assert not [p for p in web_dir.rglob("*") if p.suffix in (".mp4", ".part")]

    # Announcements that are not the workers' are refused, and end nothing.
    body = json.dumps({"job_id": "0" * 32, "state": "done"})
    assert post_hook(url, body, "not-the-secret", time.time()) == 401
    assert post_hook(url, body, SECRET, time.time() - 3600) == 401  # a replay of an old one
    assert post_hook(url, json.dumps({"job_id": "../x"}), SECRET, time.time()) == 400
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(f"{url}/jobs/{'0' * 32}", timeout=10)
    assert unknown.value.code == 404
