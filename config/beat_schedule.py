"""Periodic renders run by Celery beat.

Enable with ``CELERY_ANIMATE_BEAT_SCHEDULE=config.beat_schedule`` (the repository
root on PYTHONPATH) and run ``celery -A celery_animate beat -S celery.beat:Scheduler``
(the in-memory scheduler: beat's default keeps its state in a pickled shelve file).

The dashboard renders every ``CELERY_ANIMATE_DASHBOARD_EVERY`` seconds (default:
hourly) into ``CELERY_ANIMATE_DASHBOARD_DIR`` as ``MetricsDashboard-<UTC time>.mp4``,
keeping the newest ``CELERY_ANIMATE_DASHBOARD_KEEP`` (default 24).
"""

import os
from datetime import timedelta

beat_schedule = {
    "metrics-dashboard": {
        "task": "celery_animate.render_periodic",
        "schedule": timedelta(seconds=float(os.environ.get("CELERY_ANIMATE_DASHBOARD_EVERY", 3600))),
        "kwargs": {
            "animator": "examples.metrics_dashboard:MetricsDashboard",
            "output_dir": os.environ.get("CELERY_ANIMATE_DASHBOARD_DIR", "dashboards"),
            "n_frames": int(os.environ.get("CELERY_ANIMATE_DASHBOARD_FRAMES", 120)),
            "fps": 30,
            "keep": int(os.environ.get("CELERY_ANIMATE_DASHBOARD_KEEP", 24)),
        },
    },
}
