"""The imstags command, run through click's runner and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
from click.testing import CliRunner
from sqlalchemy import delete, insert, select, update

from imstags.cli import main
from imstags.services.bulk_import import ImportService
from imstags.storage.models import Credential, TagCount, TagVersion
from tests.support.server import RunningServer, free_port, wait_until_serving
from tests.support.signing import sdk_signed_headers


def run(settings, *args: str) -> str:
    env = {"IMSTAGS_SECRET_KEY": settings.secret_key or ""}
    result = CliRunner().invoke(
        main,
        ["--database", settings.resolved_database_url, "--data-dir", str(settings.data_dir), *args],
        env=env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_credentials_create_prints_pair_and_stores_secret_encrypted(settings, db, project_id):
    issued = json.loads(run(settings, "credentials", "create", "--project-id", project_id))
    assert set(issued) == {"access", "secret", "project_id"}
    assert issued["project_id"] == project_id
    with db.read() as session:
        stored = session.scalars(
            select(Credential).where(Credential.access == issued["access"])
        ).one()
    assert stored.project_id == project_id
    assert issued["secret"] not in stored.secret_encrypted


def test_credentials_list_shows_access_keys_but_never_secrets(settings, project_id):
    issued = json.loads(run(settings, "credentials", "create", "--project-id", project_id))
    listed = [
        json.loads(line)
        for line in run(settings, "credentials", "list", "--project-id", project_id).splitlines()
    ]
    assert [row["access"] for row in listed] == [issued["access"]]
    assert "secret" not in listed[0]
    assert issued["secret"] not in json.dumps(listed)


def test_credentials_delete_revokes_access(settings, project_id):
    issued = json.loads(run(settings, "credentials", "create", "--project-id", project_id))
    assert issued["access"] in run(settings, "credentials", "delete", issued["access"])
    assert run(settings, "credentials", "list", "--project-id", project_id) == ""


def test_credentials_delete_unknown_key_fails(settings):
    result = CliRunner().invoke(
        main,
        ["--database", settings.resolved_database_url, "credentials", "delete", "NOSUCHKEY"],
        env={"IMSTAGS_SECRET_KEY": settings.secret_key or ""},
    )
    assert result.exit_code != 0
    assert "NOSUCHKEY" in result.output


def test_serve_with_no_configuration_uses_sqlite_in_data_dir(tmp_path):
    """The README's zero-setup start: nothing configured but a home directory."""
    home = tmp_path / "home"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("IMSTAGS_") and k != "XDG_DATA_HOME"
    }
    env["HOME"] = str(home)
    port = free_port()
    issued = json.loads(
        subprocess.check_output(
            [sys.executable, "-m", "imstags", "credentials", "create", "--project-id", "p1"],
            env=env,
        )
    )
    data_dir = home / ".local" / "share" / "imstags"
    assert (data_dir / "imstags.db").exists()
    assert (data_dir / "secret.key").exists()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "imstags", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        running = RunningServer(f"http://127.0.0.1:{port}", process, log_path)
        wait_until_serving(running)
        url = f"{running.base_url}/v2/p1/images/tags"
        headers = sdk_signed_headers("GET", url, issued["access"], issued["secret"])
        response = httpx.get(url, headers=headers)
        assert response.status_code == 200
        assert response.json() == {"tags": []}
    finally:
        process.terminate()
        process.wait(timeout=10)


def invoke(settings, *args: str):
    return CliRunner().invoke(
        main,
        ["--database", settings.resolved_database_url, "--data-dir", str(settings.data_dir), *args],
        env={"IMSTAGS_SECRET_KEY": settings.secret_key or ""},
        catch_exceptions=False,
    )


def tag_image(db, project_id: str, tags: dict[str, str]) -> None:
    """A new image with these tags, written by the import's service (the one write path)."""
    line = json.dumps({"project_id": project_id, "tags": tags})
    assert ImportService(db).import_lines([line]).ok


def stored_count(db, project_id: str, key: str, value: str) -> int | None:
    with db.read() as session:
        return session.scalar(
            select(TagCount.image_count).where(
                TagCount.project_id == project_id, TagCount.key == key, TagCount.value == value
            )
        )


def tags_version(db, project_id: str) -> int:
    with db.read() as session:
        return session.scalar(select(TagVersion.version).where(TagVersion.project_id == project_id))


def test_db_check_correct_aggregate_exits_0_with_one_line(settings, db, project_id):
    tag_image(db, project_id, {"env": "prod", "team": "a"})
    tag_image(db, project_id, {"env": "prod"})
    result = invoke(settings, "db", "check", "--project-id", project_id)
    assert result.exit_code == 0, result.output
    assert result.output == (
        "consistent: 2 (key, value) pairs in 1 projects, every stored count equals its recount\n"
    )


def test_db_check_whole_database_exits_0_when_consistent(settings, db, project_id):
    tag_image(db, project_id, {"env": "prod"})
    result = invoke(settings, "db", "check")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("consistent: ")


def test_db_check_corrupted_aggregate_exits_1_and_repair_fixes_it(settings, db, project_id):
    tag_image(db, project_id, {"env": "prod", "team": "a"})
    tag_image(db, project_id, {"env": "prod"})
    # Corrupt it three ways: a wrong count, a missing row, a row of no image's tag.
    with db.engine.begin() as conn:
        conn.execute(
            update(TagCount)
            .where(TagCount.project_id == project_id, TagCount.key == "env")
            .values(image_count=5)
        )
        conn.execute(
            delete(TagCount).where(TagCount.project_id == project_id, TagCount.key == "team")
        )
        conn.execute(
            insert(TagCount).values(project_id=project_id, key="ghost", value="", image_count=1)
        )
    version_before = tags_version(db, project_id)

    found = invoke(settings, "db", "check", "--project-id", project_id)
    assert found.exit_code == 1
    assert f"project {project_id}: env=prod: stored 5, recounted 2" in found.output
    assert f"project {project_id}: team=a: stored no row, recounted 1" in found.output
    assert f"project {project_id}: ghost=: stored 1, recounted 0" in found.output
    assert "3 stored counts differ from the recount" in found.output
    assert stored_count(db, project_id, "env", "prod") == 5  # a check changes nothing

    repaired = invoke(settings, "db", "check", "--repair", "--project-id", project_id)
    assert repaired.exit_code == 0, repaired.output
    assert "repaired: 3 counts rewritten" in repaired.output
    assert stored_count(db, project_id, "env", "prod") == 2
    assert stored_count(db, project_id, "team", "a") == 1
    assert stored_count(db, project_id, "ghost", "") is None
    assert tags_version(db, project_id) == version_before + 1  # cached summaries rebuild

    again = invoke(settings, "db", "check")
    assert again.exit_code == 0, again.output
    assert again.output.startswith("consistent: ")
