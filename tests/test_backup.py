"""``imstags db backup``: a live SQLite database copied while the service writes, restored
into an empty data directory, serves the same core endpoint body; PostgreSQL gets the
pg_dump to run (and that dump, restored, serves the same body too)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid

import httpx
import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from imstags.cli import main
from imstags.settings import Settings
from tests.support.databases import empty_test_database
from tests.support.server import RunningServer, start_server
from tests.support.signing import sdk_signed_headers


def cli(settings: Settings, *args: str, input: str | None = None):
    return CliRunner().invoke(
        main,
        ["--database", settings.resolved_database_url, "--data-dir", str(settings.data_dir), *args],
        env={"IMSTAGS_SECRET_KEY": settings.secret_key or ""},
        input=input,
        catch_exceptions=False,
    )


def seed(settings: Settings, project: str, images: int) -> dict[str, str]:
    lines = "".join(
        json.dumps({"project_id": project, "name": f"i{n}", "tags": {"k": f"v{n % 7}"}}) + "\n"
        for n in range(images)
    )
    assert cli(settings, "images", "import", "--quiet", "-", input=lines).exit_code == 0
    created = cli(settings, "credentials", "create", "--project-id", project)
    assert created.exit_code == 0, created.output
    return json.loads(created.output)


def core_body(server: RunningServer, project: str, credential: dict[str, str]) -> bytes:
    url = f"{server.base_url}/v2/{project}/images/tags"
    headers = sdk_signed_headers("GET", url, credential["access"], credential["secret"])
    response = httpx.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.content


def test_sqlite_backup_of_a_live_database_restores_into_an_empty_data_dir(tmp_path):
    key = Fernet.generate_key().decode()
    live = Settings(data_dir=tmp_path / "live", secret_key=key)
    project = uuid.uuid4().hex
    credential = seed(live, project, 300)
    backup_file = tmp_path / "backup" / "imstags-backup.db"
    backup_file.parent.mkdir()
    with start_server(live, tmp_path / "live.log") as server:
        before = core_body(server, project, credential)
        # Requests keep arriving while the copy is taken.
        stop = threading.Event()

        def keep_reading() -> None:
            while not stop.is_set():
                core_body(server, project, credential)

        reader = threading.Thread(target=keep_reading)
        reader.start()
        try:
            backed_up = cli(live, "db", "backup", str(backup_file))
        finally:
            stop.set()
            reader.join(timeout=30)
        assert backed_up.exit_code == 0, backed_up.output
        assert "secret-encryption key" in backed_up.output
    assert not list(backup_file.parent.glob(".*partial*"))  # no temporary file left behind

    restored = Settings(data_dir=tmp_path / "restored", secret_key=key)
    restored.ensure_data_dir()
    shutil.copyfile(backup_file, restored.data_dir / "imstags.db")
    assert cli(restored, "db", "check").exit_code == 0
    with start_server(restored, tmp_path / "restored.log") as server:
        assert core_body(server, project, credential) == before


def test_backup_on_postgresql_points_to_pg_dump(settings, tmp_path):
    if settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL message needs a PostgreSQL database")
    result = cli(settings, "db", "backup", str(tmp_path / "x.dump"))
    assert result.exit_code == 1
    assert "pg_dump --format=custom" in result.output
    assert "pg_restore" in result.output
    assert "imstags db upgrade" in result.output


def test_pg_dump_as_printed_restores_into_an_empty_database(settings, tmp_path):
    """The printed pg_dump command, run as printed; pg_restore into an empty database."""
    if settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("pg_dump needs a PostgreSQL database")
    key = Fernet.generate_key().decode()
    with empty_test_database(tmp_path) as source_url, empty_test_database(tmp_path) as empty_url:
        source = Settings(database_url=source_url, data_dir=tmp_path / "a", secret_key=key)
        project = uuid.uuid4().hex
        credential = seed(source, project, 50)
        dump = tmp_path / "imstags.dump"
        message = cli(source, "db", "backup", str(dump)).output
        command = next(
            line.strip() for line in message.splitlines() if line.strip().startswith("pg_dump ")
        )
        subprocess.run(command, shell=True, check=True)
        empty = Settings(database_url=empty_url, data_dir=tmp_path / "b", secret_key=key)
        target = empty.resolved_database_url.replace("postgresql+psycopg", "postgresql")
        restore = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error"]
        subprocess.run([*restore, f"--dbname={target}", str(dump)], check=True)
        with start_server(source, tmp_path / "a.log") as server:
            before = core_body(server, project, credential)
        with start_server(empty, tmp_path / "b.log") as server:
            assert core_body(server, project, credential) == before
