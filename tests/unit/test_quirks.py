"""Pins what celery-animate relies on in its dependencies' private corners.

Each test names the module that holds the workaround; if one fails after an
upgrade, that module is the one to revisit.
"""

import logging
import multiprocessing.util
import subprocess
import sys

import numpy as np
import pytest

from celery_animate.embedded.worker import drop_inherited_afterfork_hooks
from celery_animate.encode import pvio_adapter


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


def test_kill_writers_of_stops_a_child_naming_the_file(tmp_path):
    """encode/pvio_adapter.py: pvio leaves ffmpeg running; its children are found through /proc."""
    target = tmp_path / "partial.mp4"
    child = subprocess.Popen(["sleep", "30", str(target)])
    pvio_adapter.kill_writers_of(target)
    assert child.poll() is not None
