"""Which images a project sees, and the image's write lock: one definition of each.

The rule of visibility is stated once, here, as a SQLAlchemy condition. The ORM queries of the
domain use it as it is (:mod:`imstags.domain.projects` re-exports it under its old address),
and the tag write path's fixed SQL (:mod:`.tag_rows`) is compiled from the same
:func:`image_for_write` statement, so the raw form cannot drift from the ORM form.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, func, literal_column, select

from imstags.storage.models import Image


def visible_to(
    project_id: str | BindParameter[str], *, by_index: bool = True
) -> ColumnElement[bool]:
    """The condition an image must meet for ``project_id`` to see it: its own images only.

    ``by_index=False`` states the same rule in a form no planner answers from the project's
    index (``coalesce`` hides the column), for queries that must start from another index.
    """
    if by_index:
        return Image.project_id == project_id
    # The empty string as SQL text, not a bound parameter, so that the compiled lock of the
    # tag write path keeps exactly its two parameters (image id, project id).
    return func.coalesce(Image.project_id, literal_column("''")) == project_id


def image_for_write(
    project_id: str | BindParameter[str], image_id: str | BindParameter[str], *columns: Any
) -> Select[Any]:
    """The project's image (or ``columns`` of it), locked for writing until the transaction
    ends; another project's image is not found, like a missing one.

    On PostgreSQL the row is locked (``FOR UPDATE``), which orders the writers of one image;
    SQLAlchemy leaves the clause out on SQLite, whose write transactions already hold the whole
    database's write lock (``BEGIN IMMEDIATE``).

    The image is found by its primary key only: the project condition is stated in the form no
    index answers. Prepared and PL/pgSQL statements get generic plans, which estimate a
    project's images by the average project; with many small projects and one large one, the
    planner could take the project's index for the lock and walk the large project's images.
    """
    return (
        select(*(columns or (Image,)))
        .where(Image.id == image_id, visible_to(project_id, by_index=False))
        .with_for_update()
    )
