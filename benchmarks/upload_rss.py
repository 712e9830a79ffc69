"""Memory of an image data upload and download: the server's RSS must not grow with the image.

Starts ``imstags serve`` on a fresh SQLite database in a temporary directory (on loopback),
creates an image, uploads ``--size-mib`` of data in a stream of 1 MiB pieces (never the whole
image in this process either), downloads it back in a stream, and prints the server's
resident set size before, at its peak during each transfer (sampled every 0.1 s), and after,
with the throughput and whether the MD5 matched. Bounded: one upload and one download, each
cut off after ``--timeout`` seconds.

    .venv/bin/python -m benchmarks.upload_rss --size-mib 2048
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
from cryptography.fernet import Fernet
from tests.support.openstack import OpenStackUser, keystone_session, make_user
from tests.support.server import start_server

from imstags.settings import Settings
from imstags.storage.database import Database
from imstags.storage.migrate import upgrade

PIECE = 1024 * 1024


class RssSampler:
    """The peak RSS (MiB) of a process and its children while a transfer runs."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> float:
        processes = [self._process, *self._process.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes) / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.1)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def pieces(count: int, digest: hashlib._Hash, deadline: float) -> Iterator[bytes]:
    block = os.urandom(PIECE)
    for index in range(count):
        if time.monotonic() > deadline:
            raise TimeoutError("upload took longer than --timeout")
        piece = index.to_bytes(8, "big") + block[8:]  # every piece differs
        digest.update(piece)
        yield piece


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imstags-upload-rss-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'imstags.db'}"
        settings = Settings(
            database_url=url, data_dir=workdir, secret_key=Fernet.generate_key().decode()
        )
        upgrade(url)
        db = Database(url)
        user = make_user(db, uuid.uuid4().hex)
        db.dispose()
        with start_server(settings, workdir / "server.log") as server:
            run(server.base_url, server.process.pid, user, args)


def run(base_url: str, pid: int, user: OpenStackUser, args: argparse.Namespace) -> None:
    token = keystone_session(base_url, user).get_token()
    if token is None:
        raise SystemExit("the server issued no token")
    headers = {"X-Auth-Token": token}
    sampler_idle = RssSampler(pid)
    with httpx.Client(base_url=base_url, headers=headers, timeout=args.timeout) as client:
        image_id = client.post("/v2/images", json={"name": "rss"}).json()["id"]
        before = sampler_idle.rss()
        sent = hashlib.md5()
        started = time.monotonic()
        with RssSampler(pid) as upload_rss:
            response = client.put(
                f"/v2/images/{image_id}/file",
                content=pieces(args.size_mib, sent, started + args.timeout),
                headers={"Content-Type": "application/octet-stream"},
            )
        upload_seconds = time.monotonic() - started
        assert response.status_code == 204, response.text
        after_upload = sampler_idle.rss()
        received = hashlib.md5()
        started = time.monotonic()
        with (
            RssSampler(pid) as download_rss,
            client.stream("GET", f"/v2/images/{image_id}/file") as stream,
        ):
            for chunk in stream.iter_bytes(PIECE):
                received.update(chunk)
                if time.monotonic() > started + args.timeout:
                    raise TimeoutError("download took longer than --timeout")
        download_seconds = time.monotonic() - started
        after = sampler_idle.rss()
        shown = client.get(f"/v2/images/{image_id}").json()
    mib = args.size_mib
    print(f"image: {mib} MiB, status {shown['status']}, size {shown['size']}")
    print(f"server RSS before:            {before:8.1f} MiB")
    upload_rate, download_rate = mib / upload_seconds, mib / download_seconds
    print(f"server RSS peak, upload:      {upload_rss.peak:8.1f} MiB  ({upload_rate:.0f} MiB/s)")
    print(f"server RSS after upload:      {after_upload:8.1f} MiB")
    print(
        f"server RSS peak, download:    {download_rss.peak:8.1f} MiB  ({download_rate:.0f} MiB/s)"
    )
    print(f"server RSS after:             {after:8.1f} MiB")
    print(
        f"checksum: sent {sent.hexdigest()} stored {shown['checksum']} "
        f"received {received.hexdigest()} -> "
        f"{'equal' if sent.hexdigest() == shown['checksum'] == received.hexdigest() else 'DIFFER'}"
    )


if __name__ == "__main__":
    main()
