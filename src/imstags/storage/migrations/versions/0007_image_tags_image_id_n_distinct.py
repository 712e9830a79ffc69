"""the planner is told how many distinct images image_tags holds (PostgreSQL)

An image's tags are written together, so they sit in the same heap page, and ANALYZE samples
whole pages: at ten million images of ten tags it saw each sampled image ten times and
estimated 226,287 distinct image ids instead of ten million. The tags of a page of a hundred
images (every listing and the query by tag read them by ``image_id = ANY(...)``) were then
estimated at 44,194 rows instead of 1,000, and read with a bitmap scan in 4.9 ms where the
estimate 1,000 gives 1.3 ms (EXPLAIN ANALYZE, 10M images). ``n_distinct = -0.1`` says: a
tenth as many ids as rows, the ten-tag limit at its fullest; catalogues with fewer tags per
image are over-estimated by at most that factor, not by two hundred. SQLite's planner keeps
no such estimate; nothing is done there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 02:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE image_tags ALTER COLUMN image_id SET (n_distinct = -0.1)")
    # The option counts from the next ANALYZE; a sampled one takes a second at 10M images.
    op.execute("ANALYZE image_tags")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE image_tags ALTER COLUMN image_id RESET (n_distinct)")
