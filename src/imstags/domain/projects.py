"""Projects: who may see which image, and naming projects for Keystone scoping.

The one rule of visibility: a project sees its own images and nothing else, on every API
(the image catalog has no public or shared images of other tenants). Another project's image is
reported exactly like a missing one (404 ``IMG.0144``), so image ids of other tenants cannot be
probed; a request whose *path* names another project is refused with 403 before any image is
looked at (``api/security.project_scope``). Every image query starts from :func:`visible_to`.

Projects exist implicitly by id. A row in ``projects`` gives one a name, so that a Keystone
password request may scope to it by name as well as by id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from imstags.errors import AttributeConflict, BadRequest, InvalidProjectId
from imstags.storage.models import Project
from imstags.storage.visibility import visible_to as visible_to  # the rule's address here

PROJECT_ID_MAX_LENGTH = 64
PROJECT_NAME_MAX_LENGTH = 64


def is_project_id(value: object) -> bool:
    """The one rule of what may be a project id: a string of 1 to 64 characters."""
    return isinstance(value, str) and 0 < len(value) <= PROJECT_ID_MAX_LENGTH


def check_project_id(project_id: str) -> str:
    """``project_id`` if it is one (:func:`is_project_id`), else ``InvalidProjectId``."""
    if not is_project_id(project_id):
        raise InvalidProjectId(f"A project id is 1 to {PROJECT_ID_MAX_LENGTH} characters.")
    return project_id


def name_project_tx(session: Session, project_id: str, name: str | None) -> None:
    """Record the project (and its name, when given) so that it can be scoped to by name."""
    check_project_id(project_id)
    if name is not None and not 0 < len(name) <= PROJECT_NAME_MAX_LENGTH:
        raise BadRequest(f"A project name is 1 to {PROJECT_NAME_MAX_LENGTH} characters.")
    project = session.get(Project, project_id)
    if name is not None:
        holder = session.scalar(select(Project).where(Project.name == name))
        if holder is not None and holder.id != project_id:
            raise AttributeConflict(f"The project name '{name}' is already taken by {holder.id}.")
    if project is None:
        session.add(Project(id=project_id, name=name, created_at=datetime.now(UTC)))
    elif name is not None:
        project.name = name


def project_name(session: Session, project_id: str) -> str:
    """The project's name, or its id when it has none (Keystone bodies always carry a name)."""
    name = session.scalar(select(Project.name).where(Project.id == project_id))
    return name or project_id


def resolve_project(session: Session, project_id: str | None, name: str | None) -> str | None:
    """The id of the project a scope names by id or by name, or None if there is none."""
    if project_id:
        return project_id
    if name:
        found = session.scalar(
            select(Project.id).where(or_(Project.name == name, Project.id == name))
        )
        return found
    return None
