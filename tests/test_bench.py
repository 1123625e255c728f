"""The benchmark's smoke run: every runner on every workload, a few frames, outputs checked."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_benchmark_smoke_run(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = (tmp_path / "results.md").read_text()
    for workload in ["one line 640x480", "five panels 2000x400", "fourteen panels 2400x1800",
                     "wave, animated_artists()"]:
        assert f"| {workload} |" in report
    assert not list(tmp_path.glob("*.mp4"))  # the runners' videos were checked, then removed
