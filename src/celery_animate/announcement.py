"""The announcement of a job's end, as values: what it says, where it may go, how it is signed.

A job submitted with ``on_done`` (a Celery signature of the user's own task)
or ``webhook`` (an http(s) URL) is announced once when it ends; the work of
announcing is :mod:`celery_animate.job.announce`. Here are its plain parts,
shared by the client (which checks at submit) and the worker (which checks
again what it reads back from a record, a stranger's word):

* :class:`OnDone`, the stored form of the signature: a dotted task name, a
  plain queue name and json args/kwargs of bounded size, nothing else;
* :func:`check_webhook_url`, the allow-list of URL prefixes;
* :func:`end_payload`, the dict both deliveries carry;
* :func:`sign` and :func:`verify`, the webhook's HMAC-SHA256 signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from celery_animate.errors import InvalidArgument

#: Bytes an on_done's stored form (task, queue, args, kwargs as JSON) may take, at most.
MAX_ON_DONE_BYTES = 16 * 1024
#: Characters of an on_done's task name, at most.
MAX_TASK_NAME = 200
#: Characters of a webhook URL, at most.
MAX_URL = 2048
#: Task names an on_done may not name: the package's own tasks and Celery's built-in ones.
RESERVED_TASK_PREFIXES = ("celery_animate.", "celery.")
#: The webhook's headers: the unix time (s) it was signed at, and the signature.
TIMESTAMP_HEADER = "X-CeleryAnimate-Timestamp"
SIGNATURE_HEADER = "X-CeleryAnimate-Signature"

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_QUEUE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")
_ON_DONE_FIELDS = {"task", "queue", "args", "kwargs"}
#: What a Celery signature (a dict) holds besides its options; these may have any falsy value.
_SIGNATURE_FLAGS = ("subtask_type", "immutable", "chord_size")


@dataclass(frozen=True)
class OnDone:
    """A user's task to send when a job ends: its name, its queue, and the args and kwargs that
    follow the announcement (which is always its first argument)."""

    task: str
    queue: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "queue": self.queue, "args": list(self.args),
                "kwargs": dict(self.kwargs or {})}

    def to_json(self) -> str:
        """The stored form (the record's ``on_done`` field); checked, so its size is bounded."""
        return _dumps(self.as_dict())


def on_done_from_signature(signature: object) -> OnDone:
    """The stored form of a Celery signature (``my_task.s(extra).set(queue="mine")``), checked.

    The signature must name its queue (``.set(queue=...)``): the job's workers do not
    know the user's routes. Only the task name, queue, args and kwargs are kept; a
    signature with other options (link, serializer, exchange, routing key, ...), an
    immutable one (it could not receive the announcement), or a group, chain or chord
    raises :class:`InvalidArgument` naming what to drop, and so does anything
    :func:`check_on_done` refuses.
    """
    if not isinstance(signature, Mapping) or "task" not in signature:
        raise InvalidArgument(
            f"on_done must be a Celery signature of your task (my_task.s().set(queue='...')), "
            f"got {type(signature).__qualname__}")
    options = dict(signature.get("options") or {})
    queue = options.pop("queue", None)
    if queue is None:
        raise InvalidArgument(
            "on_done must name its queue: my_task.s().set(queue='my_queue'), the queue your own "
            "workers consume (celery-animate's workers do not know your routes)")
    if options:
        raise InvalidArgument(
            f"on_done may carry only a task name, a queue, args and kwargs; drop the options "
            f"{sorted(options)} (links, serializers and routing are not kept)")
    flags = [name for name in _SIGNATURE_FLAGS if signature.get(name)]
    if flags:
        raise InvalidArgument(
            f"on_done must be a plain, mutable signature of one task (it receives the job's end "
            f"as its first argument); this one sets {flags}")
    return check_on_done({"task": signature["task"], "queue": queue,
                          "args": list(signature.get("args") or ()),
                          "kwargs": dict(signature.get("kwargs") or {})})


def check_on_done(data: object) -> OnDone:
    """An :class:`OnDone` from its stored form (a dict, or its JSON text), checked again.

    Raises :class:`InvalidArgument` unless ``data`` has exactly ``task`` (a dotted name of at
    most :data:`MAX_TASK_NAME` characters, not one of :data:`RESERVED_TASK_PREFIXES`),
    ``queue`` (a plain name: letters, digits, ``_ . -``), ``args`` (a list) and ``kwargs`` (a dict
    with str keys), all plain JSON, at most :data:`MAX_ON_DONE_BYTES` bytes together.
    """
    if isinstance(data, (str, bytes)):
        if len(data) > MAX_ON_DONE_BYTES:
            raise InvalidArgument(f"on_done is larger than {MAX_ON_DONE_BYTES} bytes")
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidArgument(f"on_done is not JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) != _ON_DONE_FIELDS:
        keys = sorted(data) if isinstance(data, dict) else type(data).__qualname__
        raise InvalidArgument(f"on_done must hold exactly {sorted(_ON_DONE_FIELDS)}, got {keys}")
    task, queue, args, kwargs = data["task"], data["queue"], data["args"], data["kwargs"]
    if not (isinstance(task, str) and len(task) <= MAX_TASK_NAME and _DOTTED.fullmatch(task)):
        raise InvalidArgument(f"on_done's task must be a dotted name of at most {MAX_TASK_NAME} "
                              f"characters, got {str(task)[:60]!r}")
    if task.startswith(RESERVED_TASK_PREFIXES):
        raise InvalidArgument(f"on_done may not name celery-animate's or Celery's own task {task!r}")
    if not (isinstance(queue, str) and _QUEUE.fullmatch(queue)):
        raise InvalidArgument(f"on_done's queue must be a plain name (letters, digits, '_', '.', '-'), "
                              f"got {str(queue)[:60]!r}")
    if not isinstance(args, (list, tuple)):
        raise InvalidArgument(f"on_done's args must be a list, got {type(args).__qualname__}")
    if not (isinstance(kwargs, dict) and all(isinstance(key, str) for key in kwargs)):
        raise InvalidArgument("on_done's kwargs must be a dict with str keys")
    on_done = OnDone(task, queue, tuple(args), dict(kwargs))
    try:
        size = len(_dumps(on_done.as_dict()).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"on_done's args and kwargs must be plain JSON (str, numbers, bool, None, "
                              f"lists, dicts): {exc}") from None
    if size > MAX_ON_DONE_BYTES:
        raise InvalidArgument(f"on_done takes {size} bytes as JSON; at most {MAX_ON_DONE_BYTES} are kept")
    return on_done


def check_webhook_url(url: object, allow: tuple[str, ...]) -> str:
    """``url`` if it is an http(s) URL under one of the ``allow`` prefixes; else InvalidArgument.

    A prefix matches on scheme, host and port exactly (so ``https://hooks.example.com``
    does not admit ``https://hooks.example.com.evil.org``) and on the start of the path
    at a ``/`` boundary. URLs with credentials, whitespace or control characters, ``..``
    path segments (also percent-encoded), or more than :data:`MAX_URL` characters are
    refused, and so is every URL when ``allow`` is empty (webhooks are off).
    """
    if not isinstance(url, str) or not url:
        raise InvalidArgument(f"webhook must be an http(s) URL, got {type(url).__qualname__}")
    if not allow:
        raise InvalidArgument(
            "webhooks are off: CELERY_ANIMATE_WEBHOOK_ALLOW (comma-separated URL prefixes workers "
            "may POST to) is empty")
    target = _parse_url(url, "webhook")
    for prefix in allow:
        try:
            allowed = _parse_url(prefix, "CELERY_ANIMATE_WEBHOOK_ALLOW entry")
        except InvalidArgument:
            continue  # a malformed entry admits nothing
        if target[:3] != allowed[:3]:
            continue
        base, path = allowed[3], target[3]
        if path == base or path.startswith(base if base.endswith("/") else f"{base}/"):
            return url
    raise InvalidArgument(f"webhook {url[:200]!r} is not under any prefix CELERY_ANIMATE_WEBHOOK_ALLOW "
                          f"allows ({', '.join(allow)})")


def _parse_url(url: str, what: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of an http(s) URL, lower-cased where case does not count."""
    if len(url) > MAX_URL or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InvalidArgument(f"{what} must be at most {MAX_URL} characters without whitespace")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(f"{what} {url[:200]!r} is not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"{what} must be an http:// or https:// URL with a host, got {url[:200]!r}")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(f"{what} may not carry credentials (user:password@)")
    if ".." in unquote(parts.path).split("/"):
        raise InvalidArgument(f"{what} may not have '..' path segments")
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80), parts.path


def end_payload(job_id: str, state: str, output: str | None, url: str | None, n_frames: int,
                seconds: float, error: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What an announcement says: the job's id, end ``state``, ``output`` (as recorded), ``url``
    (None unless the output has one), ``n_frames``, ``seconds`` from creation to the end, and
    for a failure ``error_type`` and ``error_message`` from ``error`` (as the record keeps it)."""
    payload: dict[str, Any] = {"job_id": job_id, "state": state, "output": output, "url": url,
                               "n_frames": int(n_frames), "seconds": round(float(seconds), 3)}
    if state == "failed":
        error = error or {}
        payload["error_type"] = str(error.get("type", "Unknown"))
        payload["error_message"] = str(error.get("message", ""))
    return payload


def body_of(payload: Mapping[str, Any]) -> str:
    """The webhook's body: the payload as compact JSON with sorted keys."""
    return _dumps(dict(payload))


def sign(secret: str, timestamp: int, body: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``"{timestamp}.{body}"``
    keyed with ``secret`` (all UTF-8)."""
    digest = hmac.new(secret.encode(), f"{int(timestamp)}.{body}".encode(), hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: str, timestamp: str, body: str, signature: str, now: float,
           tolerance: float = 300) -> bool:
    """What a receiver checks: the signature matches (compared in constant time) and
    ``timestamp`` is within ``tolerance`` seconds of ``now`` (a replayed old body fails)."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    return abs(now - stamp) <= tolerance and hmac.compare_digest(sign(secret, stamp, body), signature)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
