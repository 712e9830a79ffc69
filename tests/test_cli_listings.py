"""``imstags images list`` and ``imstags tags list``: JSON lines when piped, a table on
request, the catalog and the aggregate as the API sees them."""

from __future__ import annotations

import json

from click.testing import CliRunner

from imstags.cli import main
from tests.conftest import new_project_id

IMAGES = 1205  # more than one batch of the keyset pagination


def cli(settings, *args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(
        main,
        ["--database", settings.resolved_database_url, "--data-dir", str(settings.data_dir), *args],
        env={"IMSTAGS_SECRET_KEY": settings.secret_key or ""},
        input=input,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


def seed(settings, project: str) -> None:
    lines = "".join(
        json.dumps({"project_id": project, "name": f"img-{n}", "tags": {"tier": f"t{n % 3}"}})
        + "\n"
        for n in range(IMAGES)
    )
    cli(settings, "images", "import", "--quiet", "-", input=lines)


def test_images_list_streams_the_projects_images_with_tags_as_json_lines(settings, db):
    project, other = new_project_id(), new_project_id()
    seed(settings, project)
    seed(settings, other)
    listed = [
        json.loads(line)
        for line in cli(settings, "images", "list", "--project-id", project).splitlines()
    ]
    assert len(listed) == IMAGES
    assert {row["project_id"] for row in listed} == {project}
    ids = [row["id"] for row in listed]
    assert ids == sorted(ids) and len(set(ids)) == IMAGES
    by_name = {row["name"]: row for row in listed}
    assert by_name["img-4"]["tags"] == {"tier": "t1"}
    assert by_name["img-4"]["status"]
    limited = cli(settings, "images", "list", "--project-id", project, "--limit", "1001")
    assert [json.loads(line)["id"] for line in limited.splitlines()] == ids[:1001]


def test_tags_list_shows_the_aggregate_and_a_table_on_request(settings, db):
    project = new_project_id()
    seed(settings, project)
    rows = [
        json.loads(line)
        for line in cli(settings, "tags", "list", "--project-id", project).splitlines()
    ]
    assert rows == [
        {"project_id": project, "key": "tier", "value": f"t{n}", "images": count}
        for n, count in ((0, 402), (1, 402), (2, 401))
    ]
    table = cli(settings, "tags", "list", "--project-id", project, "--format", "table").splitlines()
    assert table[0].split() == ["PROJECT_ID", "KEY", "VALUE", "IMAGES"]
    assert table[1].split() == [project, "tier", "t0", "402"]
