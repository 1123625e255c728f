"""Create the bucket of each s3:// root in CELERY_ANIMATE_OUTPUT_ROOT, once the store takes objects.

    python docker/create_buckets.py        # docker-compose.yml's one-shot `buckets` service

Uses the endpoint and keys of this process's environment (``AWS_*``), as the
workers will. A bucket that exists is left as it is, so running it again is
harmless. Exits 0 once every bucket holds a test object (the store's volumes
are up), 1 with the last error after ``--timeout`` seconds (default 120).
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta

import obstore

from celery_animate import Settings
from celery_animate.outputs.object_store import open_store
from celery_animate.paths import parse_object_url

PROBE = ".celery-animate-probe"


def s3_buckets(settings: Settings) -> list[str]:
    return sorted({parse_object_url(root, prefix=True).bucket for root in settings.output_roots
                   if root.lower().startswith("s3://")})


def ensure_bucket(bucket: str, settings: Settings) -> None:
    """Create ``bucket`` (a signed PUT; 409 means it exists), then write and delete a probe."""
    store = open_store(parse_object_url(f"s3://{bucket}/", prefix=True), settings.object_store_env)
    request = urllib.request.Request(obstore.sign(store, "PUT", "", timedelta(seconds=60)),
                                     method="PUT", data=b"")
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # BucketAlreadyExists / BucketAlreadyOwnedByYou
            raise
    obstore.put(store, PROBE, b"ok")
    obstore.delete(store, PROBE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    buckets = s3_buckets(settings)
    if not buckets:
        print("no s3:// root in CELERY_ANIMATE_OUTPUT_ROOT: nothing to create")
        return 0
    deadline = time.monotonic() + args.timeout
    for bucket in buckets:
        while True:
            try:
                ensure_bucket(bucket, settings)
                print(f"bucket {bucket!r} is ready")
                break
            except Exception as exc:  # the store is still starting: refused, 5xx, no volume yet
                if time.monotonic() > deadline:
                    print(f"bucket {bucket!r} is not ready after {args.timeout:.0f} s: {exc}",
                          file=sys.stderr)
                    return 1
                time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
