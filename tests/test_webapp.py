"""The web example end to end in a real headless Chromium, against real workers."""

import os
import shutil
import subprocess
import sys
import urllib.request

import pytest
from helpers import wait_until
from workers import ROOT, stop

from celery_animate.client.embedded.redis_server import free_port

pytestmark = pytest.mark.cluster

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOT = ROOT / "docs" / "webapp.png"


@pytest.fixture
def webapp(cluster, tmp_path):
    port = free_port()
    env = {**cluster.env, "CELERY_ANIMATE_WEB_OUTPUT": str(tmp_path / "videos")}
    log = tmp_path / "web.log"
    server = subprocess.Popen(  # the production server docker-compose.yml runs it with
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "examples.webapp.app:app"],
        env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)

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


def test_pick_render_watch_progress_and_play(webapp, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(webapp)
    Select(browser.find_element(By.ID, "animation")).select_by_value("wave")
    frames = browser.find_element(By.ID, "frames")
    frames.clear()
    frames.send_keys("45")
    browser.find_element(By.ID, "submit").click()

    seen = []

    def finished(driver):
        seen.append(float(driver.find_element(By.ID, "progress").get_attribute("value")))
        return seen[-1] >= 100

    WebDriverWait(browser, 120, poll_frequency=0.1).until(finished)
    assert seen[-1] == 100 and seen == sorted(seen)  # the bar only moves forward
    # The first frame is the video's poster: a thumbnail 320 pixels wide, served by the app.
    # (That it is there while the job runs is checked in test_pipeline, with a slow job: this
    # one may finish between two polls of the page.)
    width = WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "const v = document.getElementById('video'); if (!v.poster) return null;"
        "const i = new Image(); i.src = v.poster;"
        "return i.complete && i.naturalWidth ? i.naturalWidth : null;"))
    assert width == 320
    duration = WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "const v = document.getElementById('video');"
        "return v.readyState >= 1 && !v.hidden ? v.duration : null;"))
    assert abs(duration - 45 / 30) < 0.1  # frames / fps
    assert "done: rendered 45/45, encoded 45/45" in browser.find_element(By.ID, "status").text
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
