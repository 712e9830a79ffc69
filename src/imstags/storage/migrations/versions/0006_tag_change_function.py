"""imstags_change_tags: a tag write in one statement on PostgreSQL

A tag write on PostgreSQL was three round trips of driver Python on a writer thread. This
function does the whole write server-side, so the service sends one statement (see
``imstags.storage.tag_change_pg``, which calls it, for the contract). It must mean exactly what
the Python write path means (``imstags.domain.tags.change.TagChange`` through
``replace_image_tags``); tests/test_tag_change_pg.py runs the same requests both ways.

- The lock is the ORM's ``image_for_write`` statement, verbatim (a test compares them): the
  project's own image, ``FOR UPDATE``; not found otherwise.
- The tags are read by the next statement, which (VOLATILE, READ COMMITTED) takes a snapshot of
  its own after the lock was granted: it sees the previous writer's tags.
- desired = current + upserts, then each removal in turn (a NULL value matches any value);
  ``required`` is checked on the current tags first; the limit only when something changes.
- Counter rows are changed in (key, value) order under COLLATE "C", which is code-point order
  (byte order of UTF-8), the order Python's ``sorted`` gives every other writer: one lock order
  for all, so no deadlocks between them. They go in as one ``INSERT ... ORDER BY ... ON
  CONFLICT`` (increments and decrements alike; the executor takes the rows in the order the
  sort yields them), then rows left at zero are deleted.
- Only the statements the change needs run (a plain add: lock, read, diff, insert, counters,
  version): each statement of a PL/pgSQL function costs the server as much as a small query.

SQLite has no functions of this kind and needs none (its writer is local): nothing is done.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 01:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CREATE = """
CREATE FUNCTION imstags_change_tags(
    p_project_id text,
    p_image_id text,
    p_upsert_keys text[],
    p_upsert_values text[],
    p_removal_keys text[],
    p_removal_values text[],
    p_required_key text,
    p_required_value text,
    p_max_tags integer,
    OUT outcome text,
    OUT tag_count integer
) LANGUAGE plpgsql VOLATILE AS $function$
DECLARE
    v_project_id text;
    v_created_at timestamptz;
    v_current jsonb;
    v_desired jsonb;
    v_deleted text[];
    v_updated_keys text[];
    v_updated_values text[];
    v_inserted_keys text[];
    v_inserted_values text[];
    i integer;
BEGIN
    SELECT images.project_id, images.created_at
    FROM images
    WHERE images.id = p_image_id AND images.project_id = p_project_id FOR UPDATE
    INTO v_project_id, v_created_at;
    IF NOT FOUND THEN
        outcome := 'image_not_found';
        tag_count := 0;
        RETURN;
    END IF;

    SELECT coalesce(jsonb_object_agg(image_tags.key, image_tags.value), '{}'::jsonb)
    INTO v_current
    FROM image_tags WHERE image_tags.image_id = p_image_id;

    IF p_required_key IS NOT NULL AND (
        NOT v_current ? p_required_key
        OR (p_required_value IS NOT NULL AND v_current->>p_required_key <> p_required_value)
    ) THEN
        outcome := 'tag_missing';
        tag_count := 0;
        RETURN;
    END IF;

    v_desired := v_current || jsonb_object(coalesce(p_upsert_keys, '{}'),
                                           coalesce(p_upsert_values, '{}'));
    FOR i IN 1 .. coalesce(array_length(p_removal_keys, 1), 0) LOOP
        IF v_desired ? p_removal_keys[i] AND (
            p_removal_values[i] IS NULL OR v_desired->>p_removal_keys[i] = p_removal_values[i]
        ) THEN
            v_desired := v_desired - p_removal_keys[i];
        END IF;
    END LOOP;

    -- The difference, in one pass: keys gone, keys whose value changed, keys new.
    SELECT count(d.key)::integer,
           coalesce(array_agg(c.key) FILTER (WHERE d.key IS NULL), '{}'),
           coalesce(array_agg(d.key) FILTER (WHERE c.value <> d.value), '{}'),
           coalesce(array_agg(d.value) FILTER (WHERE c.value <> d.value), '{}'),
           coalesce(array_agg(d.key) FILTER (WHERE c.key IS NULL), '{}'),
           coalesce(array_agg(d.value) FILTER (WHERE c.key IS NULL), '{}')
    INTO tag_count, v_deleted, v_updated_keys, v_updated_values,
         v_inserted_keys, v_inserted_values
    FROM jsonb_each_text(v_current) AS c
    FULL JOIN jsonb_each_text(v_desired) AS d ON c.key = d.key;

    IF cardinality(v_deleted) + cardinality(v_updated_keys) + cardinality(v_inserted_keys) = 0
    THEN
        outcome := 'unchanged';
        RETURN;
    END IF;
    IF tag_count > p_max_tags THEN
        outcome := 'quota_exceeded';
        RETURN;
    END IF;

    IF cardinality(v_deleted) > 0 THEN
        DELETE FROM image_tags
        WHERE image_tags.image_id = p_image_id AND image_tags.key = ANY (v_deleted);
    END IF;
    IF cardinality(v_updated_keys) > 0 THEN
        UPDATE image_tags SET value = u.value
        FROM unnest(v_updated_keys, v_updated_values) AS u(key, value)
        WHERE image_tags.image_id = p_image_id AND image_tags.key = u.key;
    END IF;
    IF cardinality(v_inserted_keys) > 0 THEN
        INSERT INTO image_tags (image_id, key, value, project_id, created_at)
        SELECT p_image_id, u.key, u.value, v_project_id, v_created_at
        FROM unnest(v_inserted_keys, v_inserted_values) AS u(key, value);
    END IF;

    -- Every counter change in one statement, rows taken in (key, value) code-point order.
    -- A pair is never both removed and added (its key would have two values), so no row is
    -- touched twice; a decrement meets an existing row (the aggregate is exact).
    INSERT INTO tag_counts AS counts (project_id, key, value, image_count)
    SELECT p_project_id, changes.key, changes.value, changes.delta
    FROM (
        SELECT c.key, c.value, -1 AS delta FROM jsonb_each_text(v_current) AS c
        WHERE (v_desired->>c.key) IS DISTINCT FROM c.value
        UNION ALL
        SELECT d.key, d.value, 1 AS delta FROM jsonb_each_text(v_desired) AS d
        WHERE (v_current->>d.key) IS DISTINCT FROM d.value
    ) AS changes
    ORDER BY changes.key COLLATE "C", changes.value COLLATE "C"
    ON CONFLICT (project_id, key, value)
    DO UPDATE SET image_count = counts.image_count + excluded.image_count;
    IF cardinality(v_deleted) + cardinality(v_updated_keys) > 0 THEN
        -- Rows this statement already holds: no new lock, so no new order.
        DELETE FROM tag_counts
        WHERE tag_counts.project_id = p_project_id AND tag_counts.image_count <= 0
          AND (tag_counts.key, tag_counts.value) IN (
              SELECT c.key, c.value FROM jsonb_each_text(v_current) AS c
              WHERE (v_desired->>c.key) IS DISTINCT FROM c.value
          );
    END IF;

    INSERT INTO tag_versions (project_id, version) VALUES (p_project_id, 1)
    ON CONFLICT (project_id) DO UPDATE SET version = tag_versions.version + 1;
    outcome := 'changed';
END
$function$
"""

_DROP = (
    "DROP FUNCTION IF EXISTS imstags_change_tags"
    "(text, text, text[], text[], text[], text[], text, text, integer)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_DROP)
