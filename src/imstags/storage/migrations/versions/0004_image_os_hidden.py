"""images.os_hidden: Glance's boolean that leaves an image out of the native image list

Before, ``os_hidden`` could only be stored as a string property, which Glance clients refuse
to send and which no list filtered on. Existing images are not hidden.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 22:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("os_hidden", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("os_hidden")
