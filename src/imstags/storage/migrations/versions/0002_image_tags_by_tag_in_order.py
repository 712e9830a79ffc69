"""image tags carry their image's created_at, indexed for pages by one tag

The query by one tag (``resource_instances/action``) and tag-filtered image listings page
their matches newest first. With ``created_at`` beside (project_id, key, value) in one index,
a page of one tag's images is a short index range, whatever the number of images; before, the
matches had to be sorted, or the project's images walked, on every request.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image_tags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE image_tags SET created_at ="
        " (SELECT images.created_at FROM images WHERE images.id = image_tags.image_id)"
    )
    with op.batch_alter_table("image_tags", schema=None) as batch_op:
        batch_op.alter_column(
            "created_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.drop_index("ix_image_tags_project_key_value")
        batch_op.create_index(
            "ix_image_tags_by_tag",
            ["project_id", "key", "value", "created_at", "image_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("image_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_image_tags_by_tag")
        batch_op.create_index(
            "ix_image_tags_project_key_value", ["project_id", "key", "value"], unique=False
        )
        batch_op.drop_column("created_at")
