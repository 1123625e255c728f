"""Pins what celery-animate relies on in its dependencies' private corners.

Each test names the module that holds the workaround; if one fails after an
upgrade, that module is the one to revisit.
"""

import contextlib
import inspect
import logging
import multiprocessing.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from celery_animate.client.embedded.worker import drop_inherited_afterfork_hooks
from celery_animate.encode import pvio_adapter
from celery_animate.errors import EncodeAbandoned, TryLater


def test_afterfork_registry_is_what_embedded_worker_clears():
    """embedded/worker.py: multiprocessing keeps after-fork hooks in a private registry."""
    registry = multiprocessing.util._afterfork_registry

    class Pool:
        pass

    pool = Pool()
    multiprocessing.util.register_after_fork(pool, lambda _: None)
    assert pool in registry.values()  # the hook is kept there, keyed by its object
    saved = dict(registry)
    drop_inherited_afterfork_hooks()
    assert len(registry) == 0
    registry.update(saved)


def test_celery_collects_garbage_before_forking_each_pool_process():
    """embedded/worker.py: why the embedded worker freezes what it inherited (were this call
    gone, the freeze would only cost a moment and could go too)."""
    from celery.concurrency import asynpool

    assert "gc.collect()" in inspect.getsource(asynpool.AsynPool._create_worker_process)


def test_what_matplotlib_changes_without_a_stale_flag():
    """paint_order.py: these changes mark nothing stale, so unflagged() and axis_looks() look."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from celery_animate.render.paint_order import axis_looks, unflagged

    fig, ax = plt.subplots()
    mesh = ax.pcolormesh(np.zeros((3, 3)))
    note = ax.annotate("a", (0, 0), xytext=(1, 1), arrowprops={})
    label = ax.set_ylabel("y")
    fig.canvas.draw()
    before = (unflagged(mesh), unflagged(note), axis_looks(ax.yaxis))
    mesh.set_array(np.ones(9))
    note.xy = (0.5, 0.5)
    label.set_text("longer")
    assert not (fig.stale or ax.stale or mesh.stale or note.stale or ax.yaxis.stale)
    assert (unflagged(mesh), unflagged(note), axis_looks(ax.yaxis)) != before
    plt.close(fig)


def test_turning_a_polar_axes_marks_nothing_stale():
    """paint_order.py: polar_look() reads what a polar axes' transforms are made of, because
    setting it marks nothing stale, yet the axes draw differently."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from celery_animate.render.paint_order import polar_look

    fig = plt.figure()
    ax = fig.add_subplot(projection="polar")
    look = polar_look(ax)
    fig.canvas.draw()
    before = np.array(fig.canvas.buffer_rgba(), copy=True)
    ax.set_theta_offset(1.0)
    ax.set_rlabel_position(45)
    assert not (fig.stale or ax.stale or ax.patch.stale)
    assert polar_look(ax) != look
    fig.canvas.draw()
    assert not np.array_equal(before, np.asarray(fig.canvas.buffer_rgba()))
    plt.close(fig)


def test_paint_order_records_ticks_through_tick_draw():
    """paint_order.py: an axis draws each tick through Tick.draw, which draws its parts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from celery_animate.render.paint_order import is_plain_axes, record_paint_order

    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1], [0, 1])
    units, _ = record_paint_order(fig, is_plain_axes, lambda artist, parent: None)
    artists = [unit.artist for unit in units]
    drawn = [tick for tick in ax.xaxis.get_major_ticks() if tick.tick1line in artists]
    assert ax.patch is artists[0] and line in artists and ax.xaxis not in artists
    assert len(drawn) >= 3 and all(tick.label1 in artists for tick in drawn)  # ticks opened up
    assert artists.index(drawn[0].tick1line) < artists.index(line)  # axes (z 1.5) before lines
    plt.close(fig)


def test_asking_a_polar_spine_its_position_changes_how_it_draws():
    """paint_order.py: decorations_look() reads Spine._position, because get_position() sets
    one on spines that have none (polar axes'), moving what they draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from celery_animate.render.paint_order import decorations_look

    fig = plt.figure()
    ax = fig.add_subplot(projection="polar")
    fig.canvas.draw()
    before = np.array(fig.canvas.buffer_rgba(), copy=True)
    spine = ax.spines["polar"]
    assert spine._position is None
    decorations_look(ax)  # reads it, leaves it be
    fig.canvas.draw()
    assert np.array_equal(before, np.asarray(fig.canvas.buffer_rgba()))
    spine.get_position()
    assert spine._position is not None
    fig.canvas.draw()
    assert not np.array_equal(before, np.asarray(fig.canvas.buffer_rgba()))
    plt.close(fig)


def test_the_result_backend_in_the_environment_beats_the_constructor(monkeypatch):
    """celery_app.py: CELERY_RESULT_BACKEND overrides Celery(backend=...); backend_cls does not."""
    from celery import Celery

    from celery_animate import Settings
    from celery_animate.worker.app import JobStateRedisBackend, create_app

    url = "redis://127.0.0.1:1/0"
    monkeypatch.setenv("CELERY_RESULT_BACKEND", url)
    plain = Celery("plain", broker=url, backend=f"celery_animate.worker.app:JobStateRedisBackend+{url}",
                   set_as_current=False)
    assert type(plain.backend) is not JobStateRedisBackend  # the quirk
    ours = create_app(Settings(broker_url=url, result_backend=url))
    assert type(ours.backend) is JobStateRedisBackend


def test_sending_a_group_subscribes_to_each_member_s_result(monkeypatch):
    """celery_app.py: a group (a chord's header) sent with a Redis result backend registers every
    member's result with ``add_pending_result`` (which SUBSCRIBEs to it), besides the
    ``on_task_call`` each send makes; JobStateRedisBackend turns both into no-ops."""
    from celery import Celery, group
    from celery.backends.redis import RedisBackend

    from celery_animate.worker.app import JobStateRedisBackend

    pending: list[str] = []
    monkeypatch.setattr(RedisBackend, "add_pending_result",
                        lambda self, result, weak=False, start_drainer=True: pending.append(result.id))
    monkeypatch.setattr(RedisBackend, "on_task_call", lambda self, producer, task_id: None)
    url = "redis://127.0.0.1:1/0"  # nothing listens there: a subscription would fail loudly
    for backend, expected in ((url, 3), (f"celery_animate.worker.app:JobStateRedisBackend+{url}", 0)):
        app = Celery("plain", broker="memory://", set_as_current=False)
        app.backend_cls = backend
        pending.clear()
        group(app.signature("t", args=(k,)) for k in range(3)).apply_async()
        assert len(pending) == expected
    assert JobStateRedisBackend.add_pending_result is not RedisBackend.add_pending_result


pvio = pytest.importorskip("pvio")


def test_pvio_private_accel_module_has_what_the_adapter_uses():
    """encode/pvio_adapter.py: capability checks come from pvio._accel."""
    accel = pvio._accel
    for name in ("cuda_available", "can_use_nvenc", "nvenc_ffmpeg_exe", "NVENC_CODEC", "LIBX264_CODEC"):
        assert hasattr(accel, name), f"pvio._accel.{name} is gone"
    assert accel.LIBX264_CODEC == pvio_adapter.LIBX264
    caps = pvio_adapter.encoder_capabilities()
    assert caps["pvio"] is True and isinstance(caps["cuda"], bool)


def test_pvio_reads_frames_in_two_passes(tmp_path):
    """encode/pvio_adapter.py: PvioFeed serves pvio's size-check pass with frame 0."""
    frames = [np.full((32, 32, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    reported = []
    feed = pvio_adapter.PvioFeed(frames, reported.append)
    codec = pvio_adapter.write_video(tmp_path / "v.mp4", feed, 5, mode="cpu", quality=10, preset=None,
                                     extra_ffmpeg_params=None)
    assert feed.passes == 2 and sum(reported) == 5 and codec == "libx264"
    decoded, _ = pvio.read_frames_from_video(str(tmp_path / "v.mp4"))
    assert [round(f.mean() / 40) for f in decoded] == [0, 1, 2, 3, 4]



def test_pvio_asks_torch_about_cuda_in_auto_mode_and_the_adapter_spares_it(tmp_path, monkeypatch):
    """encode/pvio_adapter.py: pvio's "auto" mode calls _accel.cuda_available(), which imports
    torch (about a second in a fresh process); where no NVIDIA device is present, write_video
    asks for "cpu", the same libx264 encode. When pvio stops asking, this test fails: drop the
    workaround."""
    asked = []
    monkeypatch.setattr(pvio._accel, "cuda_available", lambda: asked.append(True) or False)
    frames = [np.full((32, 32, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    pvio.write_frames_to_video(str(tmp_path / "pvio.mp4"), frames, 5, mode="auto", quiet=True)
    assert asked, "pvio no longer asks about CUDA in auto mode"
    asked.clear()
    monkeypatch.setattr(pvio_adapter, "nvidia_device_present", lambda: False)
    feed = pvio_adapter.PvioFeed(frames, lambda n: None)
    assert pvio_adapter.write_video(tmp_path / "ours.mp4", feed, 5, mode="auto", quality=None,
                                    preset=None, extra_ffmpeg_params=None) == "libx264"
    assert asked == []
    assert (tmp_path / "ours.mp4").read_bytes() == (tmp_path / "pvio.mp4").read_bytes()

def test_pvio_cannot_encode_lossless_libx264_by_itself(tmp_path):
    """encode/pvio_adapter.py: pvio asks libx264 for the High profile, which has no lossless mode,
    so video_quality=0 (crf 0) fails unless the adapter asks for High 4:4:4 Predictive. When
    pvio manages on its own, this test fails: drop the workaround."""
    frames = [np.full((32, 32, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    # ffmpeg refuses the settings: a broken pipe, or, for a few frames, no file at all.
    with contextlib.suppress(OSError):
        pvio.write_frames_to_video(str(tmp_path / "raw.mp4"), frames, 5, mode="cpu", quality=0,
                                   quiet=True)
    assert not (tmp_path / "raw.mp4").exists() or (tmp_path / "raw.mp4").stat().st_size == 0
    feed = pvio_adapter.PvioFeed(frames, lambda n: None)
    assert pvio_adapter.write_video(tmp_path / "v.mp4", feed, 5, mode="cpu", quality=0, preset=None,
                                    extra_ffmpeg_params=None) == "libx264"
    decoded, _ = pvio.read_frames_from_video(str(tmp_path / "v.mp4"))
    assert len(decoded) == 5  # crf 0: lossless but for RGB to YUV and back (a level at most)
    assert all(abs(float(f.mean()) - 40 * i) <= 1 for i, f in enumerate(decoded))


def test_pvio_fallback_is_reported_as_a_log_warning():
    """encode/pvio_adapter.py: FallbackWatch recognises pvio's fall-back message."""
    watch = pvio_adapter.FallbackWatch()
    record = logging.LogRecord("pvio.io", logging.WARNING, __file__, 1,
                               "NVENC failed; falling back to libx264", None, None)
    watch.emit(record)
    assert watch.fell_back
    code = "import inspect, pvio.io; print(inspect.getsource(pvio.io))"
    source = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "falling back" in source or "encoding with libx264" in source


def _pretend_nvenc(monkeypatch) -> None:
    """Make pvio try NVENC first (no GPU here: that attempt fails, or is stopped by the feed)."""
    monkeypatch.setattr(pvio._accel, "cuda_available", lambda: True)
    monkeypatch.setattr(pvio._accel, "can_use_nvenc", lambda height, width: True)
    monkeypatch.setattr(pvio._accel, "nvenc_ffmpeg_exe", lambda: None)


class _StopsAt:
    """Frames that raise ``error`` when frame ``at`` is asked for, counting their passes."""

    def __init__(self, n: int, at: int, error: Exception):
        self.frames = [np.full((32, 32, 3), 40 * i, dtype=np.uint8) for i in range(n)]
        self.at, self.error, self.passes = at, error, 0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index):
        return self.frames[index]

    def __iter__(self):
        self.passes += 1
        for index, frame in enumerate(self.frames):
            if index == self.at and self.passes > 1:
                raise self.error
            yield frame


def test_pvio_answers_any_exception_of_an_nvenc_attempt_by_encoding_again_with_libx264(
        tmp_path, monkeypatch):
    """encode/pvio_adapter.py: why PvioFeed remembers an encoder's stop: pvio reads the frames
    again for its libx264 attempt after any exception of the NVENC one."""
    _pretend_nvenc(monkeypatch)
    frames = _StopsAt(5, at=2, error=ValueError("stop"))
    with pytest.raises(ValueError, match="stop"):
        pvio.write_frames_to_video(str(tmp_path / "v.mp4"), frames, 5, mode="gpu", quiet=True)
    assert frames.passes == 3  # the size check, the NVENC attempt, the libx264 attempt


@pytest.mark.parametrize("stop", [EncodeAbandoned("the job was cancelled"), TryLater(1.0, "later")])
def test_an_encoder_that_steps_aside_is_not_encoded_again_with_libx264(tmp_path, monkeypatch, stop):
    _pretend_nvenc(monkeypatch)
    # Stopped at the attempt's first frame: before anything reaches ffmpeg, whose NVENC attempt
    # fails here (no GPU) and, on a loaded machine, could otherwise fail first.
    frames = _StopsAt(5, at=0, error=stop)
    feed = pvio_adapter.PvioFeed(frames, lambda n: None)
    with pytest.raises(type(stop)) as raised:
        pvio_adapter.write_video(tmp_path / "v.mp4", feed, 5, mode="gpu", quality=10, preset=None,
                                 extra_ffmpeg_params=None)
    assert raised.value is stop and feed.stopped is stop
    assert frames.passes == 2  # the NVENC attempt; the libx264 one stopped before reading any
    assert not (tmp_path / "v.mp4").exists()


def test_kill_writers_of_stops_a_child_naming_the_file(tmp_path):
    """encode/pvio_adapter.py: pvio leaves ffmpeg running; its children are found through /proc."""
    target = tmp_path / "partial.mp4"
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    writer = subprocess.Popen([*sleeper, str(target)])
    bystander = subprocess.Popen([*sleeper, str(tmp_path / "other.mp4")])
    try:
        assert Path(f"/proc/{writer.pid}").exists()
        pvio_adapter.kill_writers_of(target)
        assert not Path(f"/proc/{writer.pid}").exists()  # killed and reaped
        assert bystander.poll() is None
    finally:
        for child in (writer, bystander):
            child.kill()
            child.wait()


def test_kombu_keeps_each_priority_of_a_redis_queue_in_a_list_of_its_own():
    """broker_layout.py: reads the lists kombu's Redis transport keeps a queue's messages in,
    one per priority, named with the ``sep`` transport option celery_app sets."""
    from types import SimpleNamespace

    from kombu.transport.redis import Channel

    from celery_animate import Settings
    from celery_animate.job.broker_layout import PRIORITY_LEVELS, SEP, priority_lists
    from celery_animate.worker.app import create_app

    url = "redis://127.0.0.1:1/0"
    options = create_app(Settings(broker_url=url, result_backend=url)).conf.broker_transport_options
    assert options["sep"] == SEP and options["priority_steps"] == list(range(PRIORITY_LEVELS))
    channel = SimpleNamespace(sep=SEP, priority_steps=options["priority_steps"])
    channel.priority = lambda n: Channel.priority(channel, n)
    assert [Channel._q_for_pri(channel, "gpu", p) for p in range(10)] == priority_lists("gpu", 10)


def test_a_celery_message_is_read_where_kombu_keeps_it_queued_and_taken(monkeypatch):
    """broker_layout.py: a message our app sends lies, JSON, in the list of its priority; a worker
    that takes it (acks_late) moves it to the ``unacked`` hash as ``[message, exchange, routing
    key]``; its msgpack body, base64 in the envelope, holds the task's args. recovery.py relies
    on finding every message of a job in one of those places."""
    import fakeredis
    from kombu.transport import redis as kombu_redis

    from celery_animate import Settings
    from celery_animate.job.broker_layout import UNACKED_KEY, queued_and_unacked, task_call
    from celery_animate.job.messages import RENDER_TASK
    from celery_animate.worker.app import create_app

    server = fakeredis.FakeServer()
    broker = fakeredis.FakeRedis(server=server)
    monkeypatch.setattr(kombu_redis.Channel, "_create_client",
                        lambda self, asynchronous=False: fakeredis.FakeRedis(server=server))
    url = "redis://127.0.0.1:1/0"
    app = create_app(Settings(broker_url=url, result_backend=url))
    job_id = "a" * 32
    app.send_task(RENDER_TASK, args=(job_id, 3), queue="render", priority=2)
    app.send_task(RENDER_TASK, args=(job_id, 4), queue="render", priority=0)
    assert task_call(broker.lindex("render:2", 0)) == (RENDER_TASK, [job_id, 3])
    assert sorted(queued_and_unacked(broker, ["render"], 10)) == [(RENDER_TASK, [job_id, 3]),
                                                                  (RENDER_TASK, [job_id, 4])]
    with app.connection_for_read() as connection:
        taken = connection.default_channel.basic_get("render", no_ack=False)
        assert taken is not None and broker.hlen(UNACKED_KEY) == 1
        assert broker.llen("render") + broker.llen("render:2") == 1
        assert sorted(queued_and_unacked(broker, ["render"], 10)) == [(RENDER_TASK, [job_id, 3]),
                                                                      (RENDER_TASK, [job_id, 4])]
        assert queued_and_unacked(broker, ["render"], 1) is None  # more than the limit: not read


def test_kombu_gives_back_a_vanished_worker_s_messages_only_without_its_lock(monkeypatch):
    """celery_app.py: kombu gives back a vanished worker's unacknowledged messages under the lock
    ``unacked_mutex``; one a dying worker left behind blocks that for its lifetime, which the
    ``unacked_mutex_expire`` transport option sets (5 minutes by default). tests/test_fleet.py
    plants such a lock when it kills a node."""
    import fakeredis
    from kombu.transport import redis as kombu_redis

    from celery_animate import Settings
    from celery_animate.job.messages import RENDER_TASK
    from celery_animate.worker.app import create_app

    server = fakeredis.FakeServer()
    broker = fakeredis.FakeRedis(server=server)
    monkeypatch.setattr(kombu_redis.Channel, "_create_client",
                        lambda self, asynchronous=False: fakeredis.FakeRedis(server=server))
    url = "redis://127.0.0.1:1/0"
    settings = Settings(broker_url=url, result_backend=url, visibility_timeout=2)
    app = create_app(settings)
    app.send_task(RENDER_TASK, args=("a" * 32, 0), queue="render")
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        assert channel.unacked_mutex_key == "unacked_mutex"
        assert channel.unacked_mutex_expire == settings.unacked_lock_seconds == 2
        assert channel.basic_get("render", no_ack=False) is not None
        broker.zadd(channel.unacked_index_key, {broker.zrange(channel.unacked_index_key, 0, 0)[0]: 0})
        broker.set("unacked_mutex", "a dead worker's token", px=2000)
        channel.qos.restore_visible(num=None, interval=1)
        assert broker.llen("render") == 0  # held: nothing given back
        broker.delete("unacked_mutex")
        channel.qos.restore_visible(num=None, interval=1)
        assert broker.llen("render") == 1 and broker.hlen("unacked") == 0
