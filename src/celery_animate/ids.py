"""Job ids: 128 random bits as 32 lowercase hex digits, checked wherever one arrives.

A job id names Redis keys and scratch directories, so an id that came over
the broker is checked before it is used to build either.
"""

from __future__ import annotations

import re
import uuid

from celery_animate.errors import InvalidArgument

_JOB_ID = re.compile(r"[0-9a-f]{32}")


def new_job_id() -> str:
    """A fresh random job id."""
    return uuid.uuid4().hex


def is_job_id(value: object) -> bool:
    """True for a string of exactly 32 lowercase hex digits."""
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def check_job_id(value: object) -> str:
    """Return ``value`` if it is a job id; raise :class:`InvalidArgument` otherwise."""
    if not is_job_id(value):
        raise InvalidArgument(f"{value!r} is not a job id (32 lowercase hex digits)")
    return value  # type: ignore[return-value]
