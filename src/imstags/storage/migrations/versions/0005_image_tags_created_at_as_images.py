"""image tags of bulk-imported images carry their image's created_at text exactly (SQLite)

On SQLite a timestamp is text. The bulk import wrote its tag rows' ``created_at`` as the
driver's default text (``2026-11-30 22:08:22+00:00``) where the image row has SQLAlchemy's
(``2026-11-30 22:08:22.000000``): the same instant, but the two sort differently within a
second, so pages read from the by-tag index (the query by tag, tag-filtered listings in
creation order) could order and bound images of one second unlike the images themselves.
This rewrites the rows that differ from their image. PostgreSQL stores timestamps as
timestamps, so nothing differs there and nothing is done.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 23:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "UPDATE image_tags SET created_at ="
        " (SELECT images.created_at FROM images WHERE images.id = image_tags.image_id)"
        " WHERE created_at <>"
        " (SELECT images.created_at FROM images WHERE images.id = image_tags.image_id)"
    )


def downgrade() -> None:
    """Nothing to undo: the rows hold the same instants as before, in the image's text."""
