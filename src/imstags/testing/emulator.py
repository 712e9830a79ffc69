"""A running imstags and what a test does with it, over its HTTP admin API only.

This module talks to the server as any client would (it starts ``python -m imstags serve``
and sends requests), so it works the same against SQLite and PostgreSQL and imports nothing of
the service's own layers.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADMIN_TOKEN_HEADER = "X-Imstags-Admin-Token"  # noqa: S105  # a header name, not a secret
REGION = "RegionOne"
_AK_ALPHABET = string.ascii_uppercase + string.digits
_SK_ALPHABET = string.ascii_letters + string.digits


class AdminError(RuntimeError):
    """The admin API refused a request; ``status`` and ``body`` say why."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"imstags admin API answered {status}: {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class TestProject:
    """A project of the emulator with an AK/SK pair and a Keystone user of its own."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    base_url: str
    project_id: str
    access_key: str
    secret_key: str
    user_name: str
    password: str
    region: str = REGION

    def ims_client(
        self, *, retry_times: int = 0, timeout: float | tuple[float, float] = 30.0
    ) -> Any:
        """huaweicloudsdkims's ``ImsClient`` for this project (needs huaweicloudsdkims)."""
        from imstags.testing.clients import ims_client

        return ims_client(
            self.base_url,
            self.access_key,
            self.secret_key,
            self.project_id,
            retry_times=retry_times,
            timeout=timeout,
        )

    def openstack(self, **options: Any) -> Any:
        """An openstacksdk ``Connection`` as this project's user (needs openstacksdk);
        ``options`` go to ``openstack.connect`` (``api_timeout=...``, ...)."""
        from imstags.testing.clients import openstack_connection

        return openstack_connection(
            self.base_url, self.user_name, self.password, self.project_id, self.region, **options
        )


class FaultRules:
    """The server's fault injection rules (see the README's "Fault injection")."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    def add(self, **rule: Any) -> dict[str, Any]:
        """One rule, e.g. ``add(operation="Querying All Image Tags", status=503, times=2)``;
        returns it as the server holds it (with its ``id``)."""
        added: list[dict[str, Any]] = self._emulator.admin("POST", "/faults", rule)["faults"]
        return added[0]

    def add_all(self, rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        added: list[dict[str, Any]] = self._emulator.admin("POST", "/faults", list(rules))["faults"]
        return added

    def list(self) -> list[dict[str, Any]]:
        """Every rule with its counts: ``matched`` (draws) and ``fired``."""
        rules: list[dict[str, Any]] = self._emulator.admin("GET", "/faults")["faults"]
        return rules

    def get(self, rule_id: str) -> dict[str, Any]:
        return next(rule for rule in self.list() if rule["id"] == rule_id)

    def remove(self, rule_id: str) -> None:
        self._emulator.admin("DELETE", f"/faults/{rule_id}")

    def clear(self) -> None:
        self._emulator.admin("DELETE", "/faults")


class Emulator:
    """A running imstags with its admin API."""

    def __init__(self, base_url: str, admin_token: str, log_path: Path | None = None) -> None:
        self.base_url = base_url
        self.admin_token = admin_token
        self.log_path = log_path
        self.faults = FaultRules(self)

    def admin(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310  # the URL is our own http server
            f"{self.base_url}/_imstags{path}",
            data=data,
            method=method,
            headers={ADMIN_TOKEN_HEADER: self.admin_token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                text = response.read()
        except urllib.error.HTTPError as exc:
            raise AdminError(exc.code, exc.read().decode(errors="replace")) from None
        return json.loads(text) if text else None

    def seed(self, document: Mapping[str, Any]) -> dict[str, int]:
        """Load a state document (the README's "Known state"); all of it or nothing."""
        report: dict[str, int] = self.admin("POST", "/seed", document)
        return report

    def export(self, project_id: str) -> dict[str, Any]:
        """The project as a document that :meth:`seed` loads again."""
        document: dict[str, Any] = self.admin("GET", f"/projects/{project_id}/export")
        return document

    def reset(self, project_id: str | None = None) -> list[str]:
        """Empty one project, or every project."""
        path = "/reset" if project_id is None else f"/projects/{project_id}/reset"
        reset: list[str] = self.admin("POST", path)["reset"]
        return reset

    def new_project(
        self, *, images: Sequence[Mapping[str, Any]] = (), name: str | None = None
    ) -> TestProject:
        """A fresh project with an AK/SK pair, a Keystone user and ``images`` (each
        ``{"name": ..., "tags": {...}}``, optionally with an ``id``)."""
        project = TestProject(
            base_url=self.base_url,
            project_id=uuid.uuid4().hex,
            access_key="".join(secrets.choice(_AK_ALPHABET) for _ in range(20)),
            secret_key="".join(secrets.choice(_SK_ALPHABET) for _ in range(40)),
            user_name="user-" + uuid.uuid4().hex[:12],
            password=secrets.token_urlsafe(16),
        )
        entry: dict[str, Any] = {
            "id": project.project_id,
            "credentials": [{"access": project.access_key, "secret": project.secret_key}],
            "users": [{"name": project.user_name, "password": project.password}],
            "images": [dict(image) for image in images],
        }
        if name is not None:
            entry["name"] = name
        self.seed({"projects": [entry]})
        return project

    def log(self) -> str:
        """What the server wrote so far (fault rules log each fired fault with the rule id)."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(
    database_url: str | None = None,
    *,
    seed: Mapping[str, Any] | Path | None = None,
    faults: Sequence[Mapping[str, Any]] | Path | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[Emulator]:
    """A real imstags on a free loopback port, stopped when the block ends.

    ``database_url`` (SQLAlchemy form) defaults to an SQLite file in a temporary directory that
    goes away with the server; a PostgreSQL URL is used as it is (its schema is migrated).
    ``seed`` is a state document (or a file of one) loaded before the server answers;
    ``faults`` a list of fault rules (or a JSON/YAML file of them).
    """
    with tempfile.TemporaryDirectory(prefix="imstags-") as scratch:
        data_dir = Path(scratch)
        token = secrets.token_urlsafe(24)
        port = port or _free_port(host)
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMSTAGS_")}
        env.update(
            {
                "IMSTAGS_DATA_DIR": str(data_dir),
                "IMSTAGS_ADMIN_TOKEN": token,
                "IMSTAGS_LOG_LEVEL": "warning",
            }
        )
        if database_url:
            env["IMSTAGS_DATABASE_URL"] = database_url
        command = [sys.executable, "-m", "imstags", "serve", "--host", host, "--port", str(port)]
        if seed is not None:
            command += ["--seed", str(_as_file(seed, data_dir / "seed.json"))]
        if faults is not None:
            env["IMSTAGS_FAULTS_FILE"] = str(_as_file(faults, data_dir / "faults.json"))
        log_path = data_dir / "server.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=log)  # noqa: S603
        base_url = f"http://{host}:{port}"
        emulator = Emulator(base_url, token, log_path)
        try:
            _wait_until_serving(process, emulator, startup_timeout)
            yield emulator
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _as_file(content: object, path: Path) -> Path:
    if isinstance(content, Path):
        return content
    path.write_text(json.dumps(content))
    return path


def _wait_until_serving(
    process: subprocess.Popen[bytes], emulator: Emulator, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"imstags exited early:\n{emulator.log()}")
        try:
            emulator.admin("GET", "/faults")
            return
        except (OSError, AdminError):
            time.sleep(0.1)
    raise RuntimeError(f"imstags did not start within {timeout}s:\n{emulator.log()}")
