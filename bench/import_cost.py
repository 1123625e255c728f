"""What importing celery-animate costs a process: the enqueue-only import against the worker's.

    python bench/import_cost.py [--runs 5]

Each statement runs in ``--runs`` fresh interpreters (``sys.executable``). A child times only
the statement itself (``time.perf_counter``, so interpreter start-up is left out) and reports its
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, KiB on Linux) and whether
matplotlib and Celery got loaded. Printed: the median time in ms, the median peak RSS in MB
(10**6 bytes), and the same for a bare interpreter as a baseline. Linux only (ru_maxrss units).
Raises CalledProcessError when a child fails, e.g. when the package is not installed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

STATEMENTS = {
    "bare interpreter": "pass",
    "enqueue only": "from celery_animate import RenderJob, Settings",
    "worker app": "import celery_animate.worker.app",
}

CHILD = """
import json, resource, sys, time
started = time.perf_counter()
exec({statement!r})
elapsed = time.perf_counter() - started
print(json.dumps({{
    "ms": elapsed * 1000,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
    "matplotlib": "matplotlib" in sys.modules,
    "celery": "celery" in sys.modules,
}}))
"""


def measure(statement: str) -> dict:
    """One fresh interpreter running ``statement``: its time (ms), peak RSS (MB), what it loaded."""
    proc = subprocess.run([sys.executable, "-c", CHILD.format(statement=statement)],
                          capture_output=True, text=True, check=True, timeout=300)
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per statement")
    args = parser.parse_args()
    print(f"median of {args.runs} fresh interpreters ({sys.executable}, Python {sys.version.split()[0]})")
    print(f"{'what':<18} {'import ms':>10} {'max RSS MB':>11}  {'loads':<17}  statement")
    for label, statement in STATEMENTS.items():
        runs = [measure(statement) for _ in range(args.runs)]
        loads = ",".join(name for name in ("matplotlib", "celery") if runs[-1][name]) or "-"
        print(f"{label:<18} {statistics.median(r['ms'] for r in runs):>10.1f} "
              f"{statistics.median(r['rss_mb'] for r in runs):>11.1f}  {loads:<17}  {statement}")


if __name__ == "__main__":
    main()
