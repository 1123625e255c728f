"""Announcing a job's end: the payload, the on_done and webhook checks, the signature, the
``transition`` script's list, and one webhook attempt against a real HTTP server in a thread."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery import Celery, group

from celery_animate import announcement, keys
from celery_animate.config import Settings
from celery_animate.errors import InvalidArgument
from celery_animate.ids import new_job_id
from celery_animate.job import announce, lifecycle
from celery_animate.job.record import JobRecord
from celery_animate.job.spec import JobSpec
from celery_animate.lua import run_script
from celery_animate.options import RenderOptions, RenderResult

SECRET = "unit-test-secret"
RESULT = RenderResult("/videos/o.mp4", 4, 64, 48, 10, "libx264", 123, 0.5)


@pytest.fixture
def app():
    """A real Celery app on kombu's in-memory broker: what it sends can be read back."""
    return Celery("announce-unit", broker="memory://", set_as_current=False)


def take(app: Celery, queue: str):
    """The next message on ``queue`` (None if there is none within a second), acknowledged."""
    with app.connection_for_write() as conn:
        simple = conn.SimpleQueue(queue)
        try:
            message = simple.get(timeout=1)
        except simple.Empty:
            return None
        message.ack()
        simple.close()
        return message


def new_job(client, on_done=None, webhook=None, n_frames=4):
    record = JobRecord(client, new_job_id(), ttl=1000)
    lifecycle.create(record, JobSpec("m:C", b"\x80", "/videos/o.mp4", n_frames, 2, RenderOptions(fps=10)))
    record.set_announcements(on_done, webhook)
    return record


# -- the payload -------------------------------------------------------------------------------
def test_the_payload_of_a_done_job_has_its_fields_and_no_error(fake_redis):
    record = new_job(fake_redis, webhook="http://x/")
    lifecycle.end_job(record, RESULT)
    payload = announce.payload_of(record, Settings())
    assert set(payload) == {"job_id", "state", "output", "url", "n_frames", "seconds"}
    assert payload["job_id"] == record.job_id and payload["state"] == "done"
    assert payload["output"] == "/videos/o.mp4" and payload["url"] is None and payload["n_frames"] == 4
    assert 0 <= payload["seconds"] < 60


def test_the_payload_of_a_failed_job_names_its_error(fake_redis):
    record = new_job(fake_redis, webhook="http://x/")
    lifecycle.end_job(record, ZeroDivisionError("boom at frame 2"))
    payload = announce.payload_of(record, Settings())
    assert payload["state"] == "failed"
    assert payload["error_type"] == "ZeroDivisionError" and payload["error_message"] == "boom at frame 2"


def test_a_running_or_missing_job_has_no_payload(fake_redis):
    record = new_job(fake_redis)
    assert announce.payload_of(record, Settings()) is None
    assert announce.payload_of(JobRecord(fake_redis, new_job_id()), Settings()) is None


# -- on_done -----------------------------------------------------------------------------------
def test_a_signature_keeps_only_its_task_queue_args_and_kwargs(app):
    signature = app.signature("myproject.tasks.video_ready", args=(7,), kwargs={"user": "ada"})
    stored = announcement.on_done_from_signature(signature.set(queue="reports")).to_json()
    assert json.loads(stored) == {"task": "myproject.tasks.video_ready", "queue": "reports",
                                  "args": [7], "kwargs": {"user": "ada"}}
    assert announcement.check_on_done(stored) == announcement.OnDone(
        "myproject.tasks.video_ready", "reports", (7,), {"user": "ada"})


@pytest.mark.parametrize("make, match", [
    (lambda app: app.signature("t.done"), "must name its queue"),
    (lambda app: app.signature("t.done").set(queue="q", serializer="pickle"), "serializer"),
    (lambda app: app.signature("t.done").set(queue="q", exchange="x", routing_key="r"), "exchange"),
    (lambda app: app.signature("t.done", queue="q", link=app.signature("t.other")), "link"),
    (lambda app: app.signature("t.done", immutable=True).set(queue="q"), "immutable"),
    (lambda app: group(app.signature("t.a"), app.signature("t.b")).set(queue="q"), "own task|sets"),
    (lambda app: app.signature("celery_animate.render_chunk").set(queue="render"), "own task"),
    (lambda app: app.signature("celery.chord_unlock").set(queue="q"), "own task"),
    (lambda app: app.signature("t.done; rm").set(queue="q"), "dotted name"),
    (lambda app: app.signature("t." + "x" * 200).set(queue="q"), "dotted name"),
    (lambda app: app.signature("t.done").set(queue="q q"), "plain name"),
    (lambda app: app.signature("t.done", args=(b"bytes",)).set(queue="q"), "plain JSON"),
    (lambda app: app.signature("t.done", args=("x" * 17000,)).set(queue="q"), "bytes"),
    (lambda app: "t.done", "signature"),
])
def test_a_signature_with_more_than_that_is_refused(app, make, match):
    with pytest.raises(InvalidArgument, match=match):
        announcement.on_done_from_signature(make(app))


@pytest.mark.parametrize("forged", [
    {"task": "t.done", "queue": "q", "args": [], "kwargs": {}, "options": {"serializer": "pickle"}},
    {"task": "t.done", "queue": "q", "args": [], "kwargs": {}, "link": "x"},
    {"task": "t.done", "queue": "q", "args": {}, "kwargs": {}},
    {"task": "t.done", "queue": "q", "args": [], "kwargs": {"1": 1, "a": float("nan")}},
    {"task": "t.done", "queue": "../q", "args": [], "kwargs": {}},
    "not json", "[]", "x" * 20000,
])
def test_a_forged_stored_on_done_is_refused(forged):
    data = json.dumps(forged) if isinstance(forged, dict) else forged
    with pytest.raises(InvalidArgument):
        announcement.check_on_done(data)


# -- the webhook URL -------------------------------------------------------------------------------
ALLOW = ("https://hooks.example.com/celery/", "http://127.0.0.1:8123")


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/celery/", "https://hooks.example.com/celery/done?x=1",
    "HTTPS://Hooks.Example.com:443/celery/a", "http://127.0.0.1:8123/", "http://127.0.0.1:8123/any/path",
])
def test_a_url_under_an_allowed_prefix_is_accepted(url):
    assert announcement.check_webhook_url(url, ALLOW) == url


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/celeryx", "https://hooks.example.com/other",
    "https://hooks.example.com.evil.org/celery/", "http://hooks.example.com/celery/",
    "https://hooks.example.com:8443/celery/", "http://127.0.0.1:81234/", "http://127.0.0.1/",
    "https://user:pw@hooks.example.com/celery/", "https://hooks.example.com/celery/../admin",
    "https://hooks.example.com/celery/%2e%2e/admin", "ftp://hooks.example.com/celery/",
    "https://hooks.example.com/celery/\nX: y", "https://hooks.example.com/celery/ x",
    "https://hooks.example.com/celery/" + "a" * 3000, "", None, b"http://127.0.0.1:8123/",
])
def test_other_urls_are_refused(url):
    with pytest.raises(InvalidArgument):
        announcement.check_webhook_url(url, ALLOW)


def test_no_allowed_prefix_refuses_every_webhook():
    with pytest.raises(InvalidArgument, match="CELERY_ANIMATE_WEBHOOK_ALLOW"):
        announcement.check_webhook_url("https://hooks.example.com/celery/", ())


def test_settings_read_the_webhook_variables():
    settings = Settings.from_env({"CELERY_ANIMATE_WEBHOOK_ALLOW": "https://a/x/, http://b:1",
                                  "CELERY_ANIMATE_WEBHOOK_SECRET": "s",
                                  "CELERY_ANIMATE_WEBHOOK_TIMEOUT": "3"})
    assert settings.webhook_allow == ("https://a/x/", "http://b:1")
    assert settings.webhook_secret == "s" and settings.webhook_timeout == 3
    assert Settings.from_env({}).webhook_allow == () and Settings.from_env({}).webhook_secret is None


# -- the signature -----------------------------------------------------------------------------------
def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = announcement.body_of({"job_id": "j", "state": "done"})
    expected = hmac.new(SECRET.encode(), f"1700000000.{body}".encode(), hashlib.sha256).hexdigest()
    assert announcement.sign(SECRET, 1700000000, body) == f"sha256={expected}"


def test_verify_accepts_the_signed_body_only_when_fresh():
    body, now = announcement.body_of({"state": "done"}), 1700000000
    signature = announcement.sign(SECRET, now, body)
    assert announcement.verify(SECRET, str(now), body, signature, now=now + 5)
    assert not announcement.verify(SECRET, str(now), body.replace("done", "fail"), signature, now=now)
    assert not announcement.verify("other", str(now), body, signature, now=now)
    assert not announcement.verify(SECRET, str(now), body, signature, now=now + 3600)
    assert not announcement.verify(SECRET, "soon", body, signature, now=now)


# -- the list the transition script keeps, and announcing from it -------------------------------------
def test_only_jobs_that_asked_are_listed_for_announcing(fake_redis):
    plain, hooked = new_job(fake_redis), new_job(fake_redis, webhook="http://127.0.0.1:8123/")
    lifecycle.end_job(plain, lifecycle.CANCEL)
    lifecycle.end_job(hooked, lifecycle.CANCEL)
    assert fake_redis.zrange(keys.ANNOUNCE_JOBS, 0, -1) == [hooked.job_id.encode()]
    assert lifecycle.end_job(hooked, RESULT) is False  # a second end lists nothing again
    assert fake_redis.zcard(keys.ANNOUNCE_JOBS) == 1


def test_on_done_is_sent_once_as_json_with_the_payload_first(fake_redis, app):
    signature = app.signature("t.done", args=("extra",), kwargs={"k": 1}).set(queue="userq")
    record = new_job(fake_redis, on_done=announcement.on_done_from_signature(signature).to_json())
    lifecycle.end_job(record, RESULT)
    settings = Settings()
    assert announce.announce_ended(fake_redis, app, settings) == [record.job_id]
    assert announce.announce_ended(fake_redis, app, settings) == []  # taken off the list
    message = take(app, "userq")
    assert message.content_type == "application/json" and message.headers["task"] == "t.done"
    args, kwargs, _ = json.loads(message.body)
    assert args == [announce.payload_of(record, settings), "extra"] and kwargs == {"k": 1}
    assert take(app, "userq") is None
    assert record.announce_status("on_done")["state"] == "sent"
    assert record.state() == "done"


def test_a_forged_on_done_is_refused_and_nothing_is_sent(fake_redis, app):
    forged = json.dumps({"task": "t.done", "queue": "userq", "args": [], "kwargs": {},
                         "options": {"serializer": "pickle", "link": "x"}})
    record = new_job(fake_redis, on_done=forged)
    lifecycle.end_job(record, RESULT)
    announce.announce_ended(fake_redis, app, Settings())
    assert take(app, "userq") is None
    status = record.announce_status("on_done")
    assert status["state"] == "refused" and "exactly" in status["reason"]
    assert record.state() == "done"


def test_a_webhook_outside_the_workers_allow_list_is_refused_at_the_worker(fake_redis, app):
    record = new_job(fake_redis, webhook="http://10.0.0.1/steal")  # written by a forger
    lifecycle.end_job(record, lifecycle.CANCEL)
    settings = Settings(webhook_allow=("http://127.0.0.1:8123/",), webhook_secret=SECRET)
    announce.announce_ended(fake_redis, app, settings)
    assert take(app, "celery") is None  # no delivery task was sent
    assert record.announce_status("webhook")["state"] == "refused"
    assert record.state() == "cancelled"


def test_a_webhook_becomes_one_delivery_task(fake_redis, app):
    app.conf.task_routes = {announce.WEBHOOK_TASK: {"queue": "gpu"}}
    record = new_job(fake_redis, webhook="http://127.0.0.1:8123/hook")
    lifecycle.end_job(record, lifecycle.CANCEL)
    settings = Settings(webhook_allow=("http://127.0.0.1:8123/",), webhook_secret=SECRET)
    announce.announce_ended(fake_redis, app, settings)
    message = take(app, "gpu")
    assert message.headers["task"] == announce.WEBHOOK_TASK
    assert take(app, "gpu") is None
    assert record.announce_status("webhook") == {"state": "pending", "queued": True}


def test_workers_announcing_at_once_send_each_end_exactly_once(fake_redis, app):
    # Four workers' watchdogs look at the same moment, again and again: every job's on_done is
    # sent once, whichever worker claims it.
    signature = app.signature("t.done").set(queue="userq")
    on_done = announcement.on_done_from_signature(signature).to_json()
    records = [new_job(fake_redis, on_done=on_done) for _ in range(40)]
    for record in records:
        lifecycle.end_job(record, RESULT)
    settings, start = Settings(), threading.Barrier(4)
    announced: list[str] = []

    def worker() -> None:
        start.wait()
        for _ in range(5):
            announced.extend(announce.announce_ended(fake_redis, app, settings))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two Redis commands
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert sorted(announced) == sorted(record.job_id for record in records)
    sent = []
    while (message := take(app, "userq")) is not None:
        sent.append(json.loads(message.body)[0][0]["job_id"])
    assert sorted(sent) == sorted(announced)
    assert fake_redis.zcard(keys.ANNOUNCE_JOBS) == 0


def test_a_claim_its_worker_never_finished_is_taken_again_once_it_lapses(fake_redis, app):
    signature = app.signature("t.done").set(queue="userq")
    record = new_job(fake_redis, on_done=announcement.on_done_from_signature(signature).to_json(),
                     webhook="http://127.0.0.1:8123/hook")
    lifecycle.end_job(record, RESULT)
    settings = Settings(webhook_allow=("http://127.0.0.1:8123/",), webhook_secret=SECRET)
    # A worker claims the job and dies before sending anything.
    claimed = run_script(fake_redis, "claim_announcements", [keys.ANNOUNCE_JOBS],
                         [announce.CLAIM_SECONDS, 10])
    assert claimed == [record.job_id.encode()]
    assert announce.announce_ended(fake_redis, app, settings) == []  # its claim still holds
    assert take(app, "userq") is None
    fake_redis.zadd(keys.ANNOUNCE_JOBS, {record.job_id: 0})  # ... until it lapses
    assert announce.announce_ended(fake_redis, app, settings) == [record.job_id]
    assert take(app, "userq") is not None and take(app, "userq") is None
    assert take(app, "celery") is not None  # the webhook's delivery task
    # Had that worker died after sending (before taking the job off the list), the job is
    # taken again but what it recorded as sent is not sent again.
    fake_redis.zadd(keys.ANNOUNCE_JOBS, {record.job_id: 0})
    assert announce.announce_ended(fake_redis, app, settings) == [record.job_id]
    assert take(app, "userq") is None and take(app, "celery") is None


# -- one webhook attempt against a real server -----------------------------------------------------
class Receiver:
    """An HTTP server on 127.0.0.1 that answers each POST with the next of ``codes`` (then 200)."""

    def __init__(self, codes=()):
        self.codes, self.requests = list(codes), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.requests.append((self.path, dict(self.headers), body))
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                self.wfile.write(b"x" * 1000000)  # far more than a delivery reads

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(codes=()):
        made.append(Receiver(codes))
        return made[-1]

    yield make
    for server in made:
        server.close()


def ended_hooked_job(fake_redis, url):
    record = new_job(fake_redis, webhook=url + "hook?x=1")
    lifecycle.end_job(record, ZeroDivisionError("boom"))
    return record, Settings(webhook_allow=(url,), webhook_secret=SECRET, webhook_timeout=2)


def test_a_delivery_posts_the_signed_payload(fake_redis, receiver):
    server = receiver()
    record, settings = ended_hooked_job(fake_redis, server.url)
    delivery = announce.deliver_webhook(record, settings, 0)
    assert delivery.retry_in is None
    assert delivery.status["state"] == "delivered" and delivery.status["http_status"] == 200
    assert record.announce_status("webhook")["state"] == "delivered"
    [(path, headers, body)] = server.requests
    assert path == "/hook?x=1" and headers["Content-Type"] == "application/json"
    assert announcement.verify(SECRET, headers["X-CeleryAnimate-Timestamp"], body,
                               headers["X-CeleryAnimate-Signature"], now=time.time())
    assert json.loads(body) == announce.payload_of(record, settings)
    assert json.loads(body)["error_message"] == "boom"
    # A redelivered message finds it delivered and posts nothing again.
    assert announce.deliver_webhook(record, settings, 0).status["state"] == "delivered"
    assert len(server.requests) == 1


def test_a_5xx_is_retried_with_backoff_until_the_attempts_run_out(fake_redis, receiver):
    server = receiver(codes=[503] * 10)
    record, settings = ended_hooked_job(fake_redis, server.url)
    countdowns = []
    for attempt in range(len(announce.RETRY_COUNTDOWNS) + 1):
        delivery = announce.deliver_webhook(record, settings, attempt)
        if delivery.retry_in is None:
            break
        assert delivery.status["state"] == "pending"
        countdowns.append(delivery.retry_in)
    assert tuple(countdowns) == announce.RETRY_COUNTDOWNS
    status = record.announce_status("webhook")
    assert status["state"] == "failed" and status["http_status"] == 503 and status["attempts"] == 6
    assert record.state() == "failed" and len(server.requests) == 6


@pytest.mark.parametrize("code, reason", [(404, "HTTP 404"), (302, "redirect")])
def test_a_4xx_or_a_redirect_fails_at_once(fake_redis, receiver, code, reason):
    server = receiver(codes=[code])
    record, settings = ended_hooked_job(fake_redis, server.url)
    delivery = announce.deliver_webhook(record, settings, 0)
    assert delivery.retry_in is None and delivery.status["state"] == "failed"
    assert reason in delivery.status["reason"] and len(server.requests) == 1


def test_a_receiver_that_is_down_is_retried(fake_redis, receiver):
    server = receiver()
    url = server.url
    server.close()  # nothing listens there now: connection refused
    record, settings = ended_hooked_job(fake_redis, url)
    delivery = announce.deliver_webhook(record, settings, 0)
    assert delivery.retry_in == announce.RETRY_COUNTDOWNS[0]
    assert delivery.status["state"] == "pending" and "Connection" in delivery.status["reason"]


def test_a_worker_without_a_secret_refuses(fake_redis, receiver):
    server = receiver()
    record, settings = ended_hooked_job(fake_redis, server.url)
    delivery = announce.deliver_webhook(record, Settings(webhook_allow=settings.webhook_allow), 0)
    assert delivery.status["state"] == "refused" and "SECRET" in delivery.status["reason"]
    assert server.requests == []
