"""An object-store output (S3, Google Cloud Storage, Azure) through obstore.

The video is encoded into a temporary file in the worker's own staging
directory, beside the output's :class:`~celery_animate.paths.StagedOutput`,
and uploaded only once the encoder may publish: in one PUT, or for a file
over :data:`MULTIPART_BYTES` as a multipart upload that the store shows only
when it is completed. Either way the URL holds the old object or the whole
new one. Credentials and endpoints are the settings' ``object_store_env``
(this process's own environment, standard variable names), never a job's.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
from obstore.store import from_url

from celery_animate.config import Settings
from celery_animate.errors import (
    InvalidArgument,
    OutputAccessDenied,
    OutputBucketMissing,
    OutputUploadFailed,
)
from celery_animate.outputs.base import Output
from celery_animate.paths import ObjectUrl, StagedOutput, parse_object_url, partial_path

#: Files larger than this many bytes are uploaded in parts (then PARTS_BYTES per part).
MULTIPART_BYTES = 64 * 2**20
PART_BYTES = 16 * 2**20
#: Parts uploaded at once.
PART_CONCURRENCY = 4
#: Retries of one request, and the most seconds spent retrying it, before the upload fails: a
#: store that went away fails the job within about a quarter minute, not obstore's 3 minutes.
MAX_RETRIES, RETRY_SECONDS = 3, 15
#: Seconds to connect, and for one request (a part, or a whole file of at most MULTIPART_BYTES).
CONNECT_SECONDS, REQUEST_SECONDS = 10, 300

#: Which variables configure which scheme; the endpoint and region have several spellings, the
#: first one set wins.
_PREFIX = {"s3": "AWS_", "gs": "GOOGLE_", "az": "AZURE_"}
_S3_ALIASES = {"aws_endpoint": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
               "aws_region": ("AWS_REGION", "AWS_DEFAULT_REGION")}
_CREDENTIAL_HINT = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL, AWS_REGION)",
    "gs": "GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS",
    "az": "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or a SAS key or token)",
}


def store_options(url: ObjectUrl, store_env: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """obstore's ``config`` and ``client_options`` for ``url``'s store, from the variables in
    ``store_env`` that belong to its scheme."""
    env = dict(store_env)
    config: dict[str, str] = {}
    allow_http = False
    if url.scheme == "s3":
        for key, names in _S3_ALIASES.items():
            value = next((env[name] for name in names if env.get(name)), None)
            if value:
                config[key] = value
        # An endpoint the operator wrote as http:// (a store on the local network) is meant.
        allow_http = config.get("aws_endpoint", "").startswith("http://")
        allow_http |= env.get("AWS_ALLOW_HTTP", "").lower() in ("1", "true", "yes")
        skip = {"AWS_ALLOW_HTTP", *(name for names in _S3_ALIASES.values() for name in names)}
    else:
        skip = set()
    for name, value in env.items():
        if name.startswith(_PREFIX[url.scheme]) and name not in skip:
            config[name.lower()] = value
    client = {"allow_http": allow_http, "connect_timeout": timedelta(seconds=CONNECT_SECONDS),
              "timeout": timedelta(seconds=REQUEST_SECONDS)}
    retry = {"max_retries": MAX_RETRIES, "retry_timeout": timedelta(seconds=RETRY_SECONDS),
             "backoff": {"init_backoff": timedelta(milliseconds=100),
                         "max_backoff": timedelta(seconds=2), "base": 2}}
    return {"config": config, "client_options": client, "retry_config": retry}


def open_store(url: ObjectUrl, store_env: tuple[tuple[str, str], ...]) -> Any:
    """The obstore store of ``url``'s bucket. Raises :class:`OutputAccessDenied` when the
    variables do not make a usable configuration (e.g. a key id without its secret)."""
    try:
        return from_url(url.store_url, **store_options(url, store_env))
    except obstore.exceptions.BaseError as exc:
        raise OutputAccessDenied(
            f"cannot open bucket {url.bucket!r} ({url.store_url}): {_first_line(exc)}; check "
            f"{_CREDENTIAL_HINT[url.scheme]} in this process's environment") from exc


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _server_code(exc: BaseException) -> str:
    """The store's error code (``<Code>NoSuchBucket</Code>`` and the like), or ''."""
    match = re.search(r"<Code>([A-Za-z]+)</Code>", str(exc))
    return match.group(1) if match else ""


def upload_error(exc: BaseException, url: ObjectUrl) -> Exception:
    """The :class:`~celery_animate.errors.OutputStoreError` a user can act on for an obstore
    failure while writing ``url``."""
    errors = obstore.exceptions
    code = _server_code(exc)
    hint = _CREDENTIAL_HINT[url.scheme]
    if isinstance(exc, (errors.PermissionDeniedError, errors.UnauthenticatedError)) or code in (
            "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "AuthorizationFailure"):
        return OutputAccessDenied(
            f"the object store refused to let this worker write {url} ({code or 'access denied'}): "
            f"check {hint} in the encode worker's environment, and that they may write to bucket "
            f"{url.bucket!r}")
    if code in ("NoSuchBucket", "ContainerNotFound") or (
            isinstance(exc, FileNotFoundError) and "bucket" in str(exc).lower()):
        return OutputBucketMissing(
            f"bucket {url.bucket!r} does not exist ({url}): create it, or check the URL and the "
            "endpoint (AWS_ENDPOINT_URL) in the encode worker's environment")
    return OutputUploadFailed(
        f"uploading the video to {url} failed: {_first_line(exc)}. Nothing was written there; "
        "is the object store reachable from the encode worker (see its endpoint setting)? "
        "Submit the job again once it is")


class ObjectOutput(Output):
    """A video uploaded to an object store from the worker's staging directory."""

    def __init__(self, staged: StagedOutput):
        self.staged = staged
        self.url: ObjectUrl = staged.url
        self.location = str(staged.url)
        self._store_env = staged.store_env

    def temporary(self, job_id: str, generation: int) -> Path:
        self.staged.parent.mkdir(parents=True, exist_ok=True)
        return partial_path(Path(self.staged), job_id, generation)

    def publish(self, tmp: Path) -> int:
        try:
            size = tmp.stat().st_size
            store = open_store(self.url, self._store_env)
            try:
                obstore.put(store, self.url.key, tmp, use_multipart=size > MULTIPART_BYTES,
                            chunk_size=PART_BYTES, max_concurrency=PART_CONCURRENCY)
            except (obstore.exceptions.BaseError, OSError) as exc:
                raise upload_error(exc, self.url) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return size


def presigned_url(output: str, settings: Settings, expires: int) -> str:
    """A URL that GETs the object ``output`` (``s3://bucket/key``) without credentials for
    ``expires`` seconds, signed with ``settings.object_store_env`` (the caller's environment).
    Raises :class:`InvalidArgument` for a bad ``expires``,
    :class:`~celery_animate.errors.OutputPathRefused` for a URL that is not an object's, and
    :class:`OutputAccessDenied` when no credentials can sign it."""
    if isinstance(expires, bool) or not isinstance(expires, int) or not 1 <= expires <= 7 * 86400:
        raise InvalidArgument(f"expires must be whole seconds from 1 to 604800, got {expires!r}")
    url = parse_object_url(output)
    store = open_store(url, settings.object_store_env)
    try:
        return obstore.sign(store, "GET", url.key, timedelta(seconds=expires))
    except obstore.exceptions.BaseError as exc:
        raise OutputAccessDenied(
            f"cannot sign a URL for {url}: {_first_line(exc)}; check "
            f"{_CREDENTIAL_HINT[url.scheme]} in this client's environment") from exc
