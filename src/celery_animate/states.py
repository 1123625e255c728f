"""The states a job passes through. Only :mod:`celery_animate.job.lifecycle` changes them.

``queued`` → ``rendering`` → ``encoding`` → ``done``; ``failed`` and
``cancelled`` can be reached from any state that is not terminal. A job
reaches exactly one terminal state and never leaves it.
"""

QUEUED = "queued"
RENDERING = "rendering"
ENCODING = "encoding"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"

TERMINAL_STATES = frozenset({DONE, FAILED, CANCELLED})
