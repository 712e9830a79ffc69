"""``python -m benchmarks.generate`` and ``imstags images import``, run as the real commands.

The import writes through the same rules as the API: tags validated, 10 at most, and the
aggregate behind the core endpoint equal to a full recount afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from huaweicloudsdkims.v2 import ListImagesTagsRequest
from sqlalchemy import func, select, text

from imstags.storage.models import Image, ImageTag
from tests.support.aggregate import assert_aggregate_exact as assert_exact
from tests.support.clients import ims_client
from tests.support.server import server_environment

REPOSITORY = Path(__file__).resolve().parent.parent


def run_module(
    settings, module: str, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=server_environment(settings),
        cwd=REPOSITORY,
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def imstags(settings, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return run_module(settings, "imstags", *args, stdin=stdin)


def generate(settings, images: int, seed: int, project_id: str) -> list[dict]:
    done = run_module(
        settings, "benchmarks.generate", "--images", str(images), "--seed", str(seed),
        "--project-id", project_id,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    return path


def import_file(settings, path: Path, *extra: str) -> subprocess.CompletedProcess:
    return imstags(settings, "images", "import", str(path), "--quiet", *extra)


def image_count(db, project_id: str) -> int:
    with db.read() as session:
        return session.scalar(
            select(func.count()).select_from(Image).where(Image.project_id == project_id)
        )


def assert_aggregate_exact(db, project_id: str) -> dict[tuple[str, str], int]:
    """The aggregate equals a recount (``imstags db check``); returns how many images carry
    each (key, value), as the tags were written."""
    assert_exact(db, project_id)
    with db.read() as session:
        rows = session.execute(
            select(ImageTag.key, ImageTag.value).where(ImageTag.project_id == project_id)
        ).all()
    return dict(Counter((key, value) for key, value in rows))


def line(project_id: str, tags: object, image_id: str | None = None) -> dict:
    return {
        "project_id": project_id,
        "id": image_id or str(uuid.uuid4()),
        "name": "img",
        "tags": tags,
    }


def test_benchmarks_generate_is_workload_w_and_seeded(settings, project_id):
    lines = generate(settings, 200, 7, project_id)
    assert lines == generate(settings, 200, 7, project_id)
    assert lines != generate(settings, 200, 8, project_id)
    assert len(lines) == 200 and len({item["id"] for item in lines}) == 200
    keys = {key for item in lines for key in item["tags"]}
    values = {value for item in lines for value in item["tags"].values()}
    assert all(len(item["tags"]) == 10 for item in lines)
    assert all(item["project_id"] == project_id for item in lines)
    assert len(keys) <= 50 and len(values) <= 20
    assert len(keys) > 40  # 2,000 draws from 50 keys reach nearly all of them


def test_images_import_workload_keeps_aggregate_exact(
    settings, db, server, make_credential, tmp_path
):
    project = uuid.uuid4().hex
    lines = generate(settings, 300, 1, project)
    done = import_file(settings, write_lines(tmp_path / "w.jsonl", lines), "--batch-size", "64")
    assert done.returncode == 0, done.stderr.decode()
    assert "imported 300 images with 3000 tags" in done.stderr.decode()
    assert image_count(db, project) == 300
    expected = Counter(pair for item in lines for pair in item["tags"].items())
    assert assert_aggregate_exact(db, project) == dict(expected)
    # The server, another process, sees the imported tags at once.
    ims = ims_client(server.base_url, make_credential(project))
    shown = {t.key: t.values for t in ims.list_images_tags(ListImagesTagsRequest()).tags}
    assert shown == {
        key: sorted({v for k, v in expected if k == key}) for key in {k for k, _ in expected}
    }
    more = [line(project, {"fresh": "tag"})]
    assert import_file(settings, write_lines(tmp_path / "more.jsonl", more)).returncode == 0
    shown = {t.key: t.values for t in ims.list_images_tags(ListImagesTagsRequest()).tags}
    assert shown["fresh"] == ["tag"]


def test_images_import_leaves_planner_statistics_behind(settings, db, tmp_path):
    """After a bulk load the planner must know the tables' sizes: without statistics,
    PostgreSQL scanned the whole tag table for a page of a hundred images."""
    project = uuid.uuid4().hex
    done = import_file(
        settings, write_lines(tmp_path / "s.jsonl", generate(settings, 50, 2, project))
    )
    assert done.returncode == 0, done.stderr.decode()
    with db.read() as session:
        if db.is_sqlite:
            analysed = set(session.scalars(text("SELECT DISTINCT tbl FROM sqlite_stat1")))
        else:
            analysed = set(
                session.scalars(
                    text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
                )
            )
    assert {"images", "image_tags", "tag_counts"} <= analysed


def test_images_import_native_tags_and_default_project(settings, db, tmp_path, project_id):
    lines = [
        {"tags": ["os=linux", "backup", " env = prod "]},
        {"name": "no tags"},
        "",
        {"tags": {"os": "linux"}},
    ]
    done = import_file(
        settings, write_lines(tmp_path / "n.jsonl", lines), "--project-id", project_id
    )
    assert done.returncode == 0, done.stderr.decode()
    assert image_count(db, project_id) == 3
    assert assert_aggregate_exact(db, project_id) == {
        ("os", "linux"): 2,
        ("backup", ""): 1,
        ("env", "prod"): 1,
    }


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"tags": {f"k{i}": "v" for i in range(11)}}, "at most 10 tags"),
        ({"tags": {"k" * 37: "v"}}, "longer than 36"),
        ({"tags": {"a=b": "v"}}, "must not contain '='"),
        ({"tags": {"k": None}}, "has no value"),
        ({"tags": {"k": "v", " k ": "w"}}, "occurs more than once"),
        ({"tags": "k=v"}, "tags must be"),
        ({"tag": {"k": "v"}}, "unknown field(s): tag"),
        ({"id": "not-a-uuid"}, "id must be a UUID"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a line must be a JSON object"),
    ],
)
def test_images_import_bad_line_rejects_its_batch(settings, db, tmp_path, project_id, bad, message):
    good = [line(project_id, {"n": str(i)}) for i in range(5)]
    if isinstance(bad, dict):
        bad = {"project_id": project_id, **bad}
    # Batches of 2: lines 1-2 commit, lines 3-4 (line 4 bad) do not, and nothing after.
    lines = [good[0], good[1], good[2], bad, good[3], good[4]]
    done = import_file(settings, write_lines(tmp_path / "b.jsonl", lines), "--batch-size", "2")
    stderr = done.stderr.decode()
    assert done.returncode == 1
    assert "error: line 4: " in stderr and message in stderr, stderr
    assert "lines 1-2 committed" in stderr
    assert image_count(db, project_id) == 2
    assert assert_aggregate_exact(db, project_id) == {("n", "0"): 1, ("n", "1"): 1}


def test_images_import_existing_id_rejects_whole_batch(settings, db, tmp_path, project_id):
    first = line(project_id, {"a": "1"})
    assert import_file(settings, write_lines(tmp_path / "1.jsonl", [first])).returncode == 0
    # The clash is found only in the database, inside the batch's transaction.
    again = [line(project_id, {"b": "2"}), line(project_id, {"c": "3"}, first["id"])]
    done = import_file(settings, write_lines(tmp_path / "2.jsonl", again))
    assert done.returncode == 1
    assert f"line 2: an image with ID {first['id']} already exists" in done.stderr.decode()
    assert image_count(db, project_id) == 1
    assert assert_aggregate_exact(db, project_id) == {("a", "1"): 1}


def test_images_import_same_id_twice_in_file_is_reported(settings, db, tmp_path, project_id):
    twice = line(project_id, {"a": "1"})
    done = import_file(settings, write_lines(tmp_path / "t.jsonl", [twice, twice]))
    assert done.returncode == 1
    assert f"line 2: image {twice['id']} occurs twice" in done.stderr.decode()
    assert image_count(db, project_id) == 0


def test_images_import_reads_standard_input(settings, db, project_id):
    payload = (json.dumps(line(project_id, ["x=1"])) + "\n").encode()
    done = imstags(settings, "images", "import", "-", "--quiet", stdin=payload)
    assert done.returncode == 0, done.stderr.decode()
    assert assert_aggregate_exact(db, project_id) == {("x", "1"): 1}
