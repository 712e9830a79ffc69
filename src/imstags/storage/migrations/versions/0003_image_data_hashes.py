"""images carry the multihash of their data (os_hash_algo, os_hash_value)

Image data can be uploaded now: its size and MD5 checksum had columns from the start, the
sha512 multihash that Glance reports beside them gets two. Existing images have no data, so
both start as NULL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 22:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("os_hash_algo", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("os_hash_value", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("os_hash_value")
        batch_op.drop_column("os_hash_algo")
