"""imstags_change_tags: tag writes in one statement on PostgreSQL, batched

A tag write on PostgreSQL was three round trips of driver Python on a writer thread. This
function does the whole write server-side, for a batch of changes at once (the service groups
concurrent writes: ``imstags.storage.tag_change_pg`` says why and calls it). Each change must
mean exactly what the Python write path means (``imstags.domain.tags.change.TagChange``
through ``replace_image_tags``); tests/test_tag_change.py runs the same requests both ways.

- Every image is locked first, in image id order, with the ORM's ``image_for_write``
  statement verbatim (a test compares them): the project's own image, ``FOR UPDATE``.
- Then each change in the order given: its tags are read by a statement that (VOLATILE, READ
  COMMITTED) takes a snapshot of its own after the locks were granted, so it sees the previous
  writers' tags and the earlier changes of the batch; desired = current + upserts, then each
  removal in turn (a null value matches any value); ``required`` is checked on the current
  tags first; the limit only when something changes. Only the statements a change needs run.
- The aggregate once for the batch: the counter changes summed per (project, key, value) and
  written as one ``INSERT ... ORDER BY ... ON CONFLICT`` in code-point order (COLLATE "C", the
  byte order of UTF-8, which is the order Python's ``sorted`` gives every other writer: one lock
  order for all, so no deadlocks), rows left at zero deleted, then one version bump per
  project, in project order.

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
CREATE FUNCTION imstags_change_tags(p_changes jsonb, p_max_tags integer)
RETURNS TABLE (outcome text, tag_count integer)
LANGUAGE plpgsql VOLATILE AS $function$
DECLARE
    n integer := jsonb_array_length(p_changes);
    v_change jsonb;
    v_project_id text;
    v_image_id text;
    v_owner text;
    v_created_at timestamptz;
    v_owners text[];
    v_created timestamptz[];
    v_current jsonb;
    v_desired jsonb;
    v_required jsonb;
    v_removals jsonb;
    v_count integer;
    v_deleted text[];
    v_deleted_values text[];
    v_updated_keys text[];
    v_updated_old text[];
    v_updated_values text[];
    v_inserted_keys text[];
    v_inserted_values text[];
    v_removed integer;
    v_added integer;
    v_cp text[] := '{}';
    v_ck text[] := '{}';
    v_cv text[] := '{}';
    v_cd integer[] := '{}';
    v_changed_projects text[] := '{}';
    v_outcomes text[] := '{}';
    v_counts integer[] := '{}';
    i integer;
    j integer;
    r record;
BEGIN
    -- 1. Every image locked first, in image id order (one lock order between batches).
    v_owners := array_fill(NULL::text, ARRAY[n]);
    v_created := array_fill(NULL::timestamptz, ARRAY[n]);
    FOR r IN
        SELECT t.ord::integer AS idx, t.c->>'project' AS project_id, t.c->>'image' AS image_id
        FROM jsonb_array_elements(p_changes) WITH ORDINALITY AS t(c, ord)
        ORDER BY t.c->>'image' COLLATE "C", t.ord
    LOOP
        v_project_id := r.project_id;
        v_image_id := r.image_id;
        SELECT images.project_id, images.created_at
        FROM images
        WHERE images.id = v_image_id AND coalesce(images.project_id, '') = v_project_id FOR UPDATE
        INTO v_owner, v_created_at;
        IF FOUND THEN
            v_owners[r.idx] := v_owner;
            v_created[r.idx] := v_created_at;
        END IF;
    END LOOP;

    -- 2. Each change in the order given, seeing the ones before it.
    FOR i IN 1 .. n LOOP
        v_change := p_changes->(i - 1);
        v_project_id := v_change->>'project';
        v_image_id := v_change->>'image';
        IF v_owners[i] IS NULL THEN
            v_outcomes := v_outcomes || 'image_not_found'::text;
            v_counts := v_counts || 0;
            CONTINUE;
        END IF;

        SELECT coalesce(jsonb_object_agg(image_tags.key, image_tags.value), '{}'::jsonb)
        INTO v_current
        FROM image_tags WHERE image_tags.image_id = v_image_id;

        v_required := v_change->'required';
        IF jsonb_typeof(v_required) = 'array' AND (
            NOT v_current ? (v_required->>0)
            OR ((v_required->>1) IS NOT NULL
                AND v_current->>(v_required->>0) <> (v_required->>1))
        ) THEN
            v_outcomes := v_outcomes || 'tag_missing'::text;
            v_counts := v_counts || 0;
            CONTINUE;
        END IF;

        v_desired := v_current || coalesce(v_change->'upserts', '{}'::jsonb);
        v_removals := coalesce(v_change->'removals', '[]'::jsonb);
        FOR j IN 0 .. jsonb_array_length(v_removals) - 1 LOOP
            IF v_desired ? (v_removals->j->>0) AND (
                (v_removals->j->>1) IS NULL
                OR v_desired->>(v_removals->j->>0) = (v_removals->j->>1)
            ) THEN
                v_desired := v_desired - (v_removals->j->>0);
            END IF;
        END LOOP;

        -- The difference, in one pass: keys gone, keys whose value changed, keys new.
        SELECT count(d.key)::integer,
               coalesce(array_agg(c.key) FILTER (WHERE d.key IS NULL), '{}'),
               coalesce(array_agg(c.value) FILTER (WHERE d.key IS NULL), '{}'),
               coalesce(array_agg(d.key) FILTER (WHERE c.value <> d.value), '{}'),
               coalesce(array_agg(c.value) FILTER (WHERE c.value <> d.value), '{}'),
               coalesce(array_agg(d.value) FILTER (WHERE c.value <> d.value), '{}'),
               coalesce(array_agg(d.key) FILTER (WHERE c.key IS NULL), '{}'),
               coalesce(array_agg(d.value) FILTER (WHERE c.key IS NULL), '{}')
        INTO v_count, v_deleted, v_deleted_values, v_updated_keys, v_updated_old,
             v_updated_values, v_inserted_keys, v_inserted_values
        FROM jsonb_each_text(v_current) AS c
        FULL JOIN jsonb_each_text(v_desired) AS d ON c.key = d.key;

        v_removed := cardinality(v_deleted) + cardinality(v_updated_keys);
        v_added := cardinality(v_updated_keys) + cardinality(v_inserted_keys);
        IF v_removed + v_added = 0 THEN
            v_outcomes := v_outcomes || 'unchanged'::text;
            v_counts := v_counts || v_count;
            CONTINUE;
        END IF;
        IF v_count > p_max_tags THEN
            v_outcomes := v_outcomes || 'quota_exceeded'::text;
            v_counts := v_counts || v_count;
            CONTINUE;
        END IF;

        IF cardinality(v_deleted) > 0 THEN
            DELETE FROM image_tags
            WHERE image_tags.image_id = v_image_id AND image_tags.key = ANY (v_deleted);
        END IF;
        IF cardinality(v_updated_keys) > 0 THEN
            UPDATE image_tags SET value = u.value
            FROM unnest(v_updated_keys, v_updated_values) AS u(key, value)
            WHERE image_tags.image_id = v_image_id AND image_tags.key = u.key;
        END IF;
        IF cardinality(v_inserted_keys) > 0 THEN
            INSERT INTO image_tags (image_id, key, value, project_id, created_at)
            SELECT v_image_id, u.key, u.value, v_owners[i], v_created[i]
            FROM unnest(v_inserted_keys, v_inserted_values) AS u(key, value);
        END IF;

        -- The counter changes, kept for the end: -1 for each pair gone, +1 for each new one.
        v_cp := v_cp || array_fill(v_project_id, ARRAY[v_removed + v_added]);
        v_ck := v_ck || v_deleted || v_updated_keys || v_updated_keys || v_inserted_keys;
        v_cv := v_cv || v_deleted_values || v_updated_old || v_updated_values
            || v_inserted_values;
        v_cd := v_cd || array_fill(-1, ARRAY[v_removed]) || array_fill(1, ARRAY[v_added]);
        v_changed_projects := v_changed_projects || v_project_id;
        v_outcomes := v_outcomes || 'changed'::text;
        v_counts := v_counts || v_count;
    END LOOP;

    -- 3. The aggregate, once for the batch: counter rows in (project, key, value) code-point
    -- order, then the versions in project order.
    IF cardinality(v_changed_projects) > 0 THEN
        INSERT INTO tag_counts AS counts (project_id, key, value, image_count)
        SELECT d.project_id, d.key, d.value, sum(d.delta)
        FROM unnest(v_cp, v_ck, v_cv, v_cd) AS d(project_id, key, value, delta)
        GROUP BY d.project_id, d.key, d.value
        HAVING sum(d.delta) <> 0
        ORDER BY d.project_id COLLATE "C", d.key COLLATE "C", d.value COLLATE "C"
        ON CONFLICT (project_id, key, value)
        DO UPDATE SET image_count = counts.image_count + excluded.image_count;
        IF -1 = ANY (v_cd) THEN
            -- Rows this transaction already holds: no new lock, so no new order.
            DELETE FROM tag_counts
            WHERE tag_counts.image_count <= 0
              AND (tag_counts.project_id, tag_counts.key, tag_counts.value) IN (
                  SELECT d.project_id, d.key, d.value
                  FROM unnest(v_cp, v_ck, v_cv, v_cd) AS d(project_id, key, value, delta)
                  WHERE d.delta < 0
              );
        END IF;
        INSERT INTO tag_versions (project_id, version)
        SELECT projects.project_id, 1
        FROM (SELECT DISTINCT unnest(v_changed_projects) AS project_id) AS projects
        ORDER BY projects.project_id COLLATE "C"
        ON CONFLICT (project_id) DO UPDATE SET version = tag_versions.version + 1;
    END IF;

    RETURN QUERY
        SELECT o.status, o.tags
        FROM unnest(v_outcomes, v_counts) WITH ORDINALITY AS o(status, tags, ord)
        ORDER BY o.ord;
END
$function$
"""

_DROP = "DROP FUNCTION IF EXISTS imstags_change_tags(jsonb, integer)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_DROP)
