"""The tag code's storage constructs: one image lock and visibility rule for the ORM and the
write path's fixed SQL, and a substring test that means the same on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from imstags.domain.images.records import create_image_tx
from imstags.domain.tags.write_path import lock_image, locked_image_tags
from imstags.errors import ImageNotFound
from imstags.storage.database import Database
from imstags.storage.models import Image
from imstags.storage.text_match import contains_text
from imstags.storage.visibility import image_for_write
from tests.conftest import new_project_id


@pytest.mark.parametrize(
    ("dialect", "locks_row"),
    [(sqlite.dialect(), False), (postgresql.dialect(paramstyle="format"), True)],
)
def test_image_lock_binds_image_then_project_on_each_database(dialect, locks_row):
    """The write path runs the compiled lock with (image id, project id) as positional
    parameters; PostgreSQL locks the row, SQLite holds the database's write lock already."""
    lock = image_for_write(bindparam("project_id"), bindparam("image_id"), Image.id)
    compiled = lock.compile(dialect=dialect)
    assert compiled.positiontup == ["image_id", "project_id"]
    assert str(compiled).endswith(" FOR UPDATE") is locks_row


def _found(call) -> bool:
    try:
        call()
    except ImageNotFound:
        return False
    return True


def test_image_lock_orm_and_write_path_see_the_same_images(db: Database):
    """Given images of two projects, when each project locks each image (and a missing one)
    through the ORM and through the write path's SQL, then both find exactly the same ones:
    the project's own images."""
    owner, other = new_project_id(), new_project_id()
    image = db.write(lambda s: create_image_tx(s, owner, {"name": "x"}, ["k=v"], {})).image.id

    def found(project: str, image_id: str) -> tuple[bool, bool]:
        by_orm = _found(lambda: db.write(lambda s: lock_image(s, project, image_id)))
        by_sql = _found(
            lambda: db.write_tags(lambda rows: locked_image_tags(rows, project, image_id))
        )
        return by_orm, by_sql

    missing = "00000000-0000-0000-0000-000000000000"
    assert found(owner, image) == (True, True)
    assert found(other, image) == (False, False)
    assert found(owner, missing) == (False, False)


def test_contains_text_is_a_case_sensitive_literal_substring(db: Database):
    """Given names with wildcard characters and mixed case, when filtering by substring,
    then case counts and ``%``/``_`` are plain characters, on either database."""
    project = new_project_id()
    names = ["Report_2024%", "report-2024", "REPORT"]
    for name in names:
        db.write(lambda s, n=name: create_image_tx(s, project, {"name": n}, [], {}))

    def matching(fragment: str) -> set[str]:
        with db.read() as session:
            rows = session.scalars(
                select(Image.name).where(
                    Image.project_id == project, contains_text(Image.name, fragment)
                )
            )
            return set(rows)

    assert matching("port") == {"Report_2024%", "report-2024"}
    assert matching("_2024%") == {"Report_2024%"}
    assert matching("REP") == {"REPORT"}
    assert matching("x") == set()
