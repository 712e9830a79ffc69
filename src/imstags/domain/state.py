"""Known state for tests: one document that seeds projects, and the same document exported.

The document (JSON or YAML, parsed by the caller into plain values)::

    projects:
      - id: 0f3c...            # the project id, 1 to 64 characters
        name: demo             # optional: lets Keystone clients scope by name
        credentials:           # AK/SK pairs with the keys the test configuration names
          - {access: AKDEMO0000000000000A, secret: "...", description: ci}
        users:                 # Keystone users; password, or password_hash from an export
          - {name: alice, password: "..."}
        images:                # as `imstags images import` lines, without project_id
          - {id: 1b9e4c3a-..., name: web-01, tags: {env: prod}}

A seed is one transaction: anything refused leaves nothing of the document written. Images go
through the bulk import's parser and batch writer, so they pass the same tag rules and keep the
aggregate exact. An export holds what a seed can load again: credentials with their secrets in
clear (it is a test fixture's state), users with their password hashes, images with their
names and tags (other image attributes are not part of the document).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from imstags.domain.bulk_import import BatchRejected, ImportLine, LineParser, write_batch
from imstags.domain.credentials import store_credential_tx
from imstags.domain.identity import DOMAIN_ID, USER_NAME_MAX_LENGTH, create_user_tx
from imstags.domain.projects import check_project_id, name_project_tx
from imstags.domain.secrets import SecretBox
from imstags.domain.tags.write_path import remove_project_tags, tags_of_images
from imstags.errors import AttributeConflict, BadRequest, ImsError
from imstags.storage.models import Credential, Image, Project, TagCount, Token, User

PROJECT_FIELDS = frozenset({"id", "name", "credentials", "users", "images"})
CREDENTIAL_FIELDS = frozenset({"access", "secret", "description"})
USER_FIELDS = frozenset({"name", "password", "password_hash"})
# Access keys as the SDKs send them in the Authorization header; secrets any printable ASCII.
_ACCESS = re.compile(r"[A-Za-z0-9]{1,64}")
_SECRET = re.compile(r"[!-~]{1,128}")


@dataclass(frozen=True)
class SeedReport:
    projects: int
    credentials: int
    users: int
    images: int
    tags: int


def seed_tx(session: Session, box: SecretBox, document: object) -> SeedReport:
    """Load a whole document in the caller's transaction (see the module)."""
    projects = _list_of(_mapping(document, "the document", {"projects"}), "projects")
    counts = [0, 0, 0, 0, 0]
    parser = LineParser()
    lines: list[ImportLine] = []
    for index, raw in enumerate(projects):
        project = _mapping(raw, f"projects[{index}]", PROJECT_FIELDS)
        project_id = project.get("id")
        if not isinstance(project_id, str):
            raise BadRequest(f"projects[{index}].id must be a string")
        check_project_id(project_id)
        name = project.get("name")
        if name is not None and not isinstance(name, str):
            raise BadRequest(f"projects[{index}].name must be a string")
        name_project_tx(session, project_id, name)
        for entry in _list_of(project, "credentials"):
            _add_credential(session, box, project_id, entry)
            counts[1] += 1
        for entry in _list_of(project, "users"):
            _add_user(session, project_id, entry)
            counts[2] += 1
        for number, image in enumerate(_list_of(project, "images"), start=len(lines) + 1):
            if not isinstance(image, Mapping) or "project_id" in image:
                raise BadRequest(
                    f"projects[{index}].images: an image is an object without project_id"
                )
            raw_line = orjson.dumps({**image, "project_id": project_id})
            try:
                lines.append(parser.parse(number, raw_line))
            except ImsError as exc:
                raise BadRequest(f"projects[{index}].images: {exc.message}") from None
        counts[0] += 1
    if lines:
        try:
            counts[3], counts[4] = write_batch(session, lines)
        except BatchRejected as rejected:
            raise AttributeConflict("; ".join(str(e.message) for e in rejected.errors)) from None
    return SeedReport(*counts)


def _mapping(raw: object, where: str, fields: frozenset[str] | set[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise BadRequest(f"{where} must be an object")
    unknown = set(raw) - set(fields)
    if unknown:
        raise BadRequest(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    return raw


def _list_of(parent: Mapping[str, Any], field: str) -> list[Any]:
    value = parent.get(field, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{field} must be a list")
    return value


def _add_credential(session: Session, box: SecretBox, project_id: str, raw: object) -> None:
    entry = _mapping(raw, "a credential", CREDENTIAL_FIELDS)
    access, secret = entry.get("access"), entry.get("secret")
    description = entry.get("description", "")
    if not isinstance(access, str) or not _ACCESS.fullmatch(access):
        raise BadRequest("a credential's access key is 1 to 64 letters and digits")
    if not isinstance(secret, str) or not _SECRET.fullmatch(secret):
        raise BadRequest("a credential's secret is 1 to 128 printable ASCII characters")
    if not isinstance(description, str) or len(description) > 255:
        raise BadRequest("a credential's description is a string of at most 255 characters")
    if session.get(Credential, access) is not None:
        raise AttributeConflict(f"The access key {access} already exists.")
    store_credential_tx(session, box, access, secret, project_id, description)


def _add_user(session: Session, project_id: str, raw: object) -> None:
    entry = _mapping(raw, "a user", USER_FIELDS)
    name, password, password_hash = (
        entry.get("name"),
        entry.get("password"),
        entry.get("password_hash"),
    )
    if isinstance(password, str) and password_hash is None:
        if not isinstance(name, str):
            raise BadRequest("a user's name must be a string")
        create_user_tx(session, name, password, project_id)
        return
    if not isinstance(password_hash, str) or password is not None:
        raise BadRequest("a user has either a password or a password_hash (from an export)")
    if not isinstance(name, str) or not 0 < len(name) <= USER_NAME_MAX_LENGTH:
        raise BadRequest(f"A user name is 1 to {USER_NAME_MAX_LENGTH} characters.")
    if not password_hash.startswith("$argon2"):
        raise BadRequest("a password_hash is an argon2 hash, as an export writes it")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise AttributeConflict(f"A user named '{name}' already exists.")
    session.add(
        User(
            id=uuid.uuid4().hex,
            name=name,
            domain_id=DOMAIN_ID,
            password_hash=password_hash,
            project_id=project_id,
            enabled=True,
            created_at=_now(),
        )
    )


def _now() -> datetime:
    return datetime.now(UTC)


def export_project(session: Session, box: SecretBox, project_id: str) -> dict[str, Any]:
    """The project as a document that :func:`seed_tx` loads again (after a reset)."""
    check_project_id(project_id)
    project: dict[str, Any] = {"id": project_id}
    name = session.scalar(select(Project.name).where(Project.id == project_id))
    if name is not None:
        project["name"] = name
    credentials = session.scalars(
        select(Credential).where(Credential.project_id == project_id).order_by(Credential.access)
    )
    project["credentials"] = [
        {"access": c.access, "secret": box.open(c.secret_encrypted), "description": c.description}
        for c in credentials
    ]
    users = session.scalars(select(User).where(User.project_id == project_id).order_by(User.name))
    project["users"] = [{"name": u.name, "password_hash": u.password_hash} for u in users]
    images = session.execute(
        select(Image.id, Image.name)
        .where(Image.project_id == project_id)
        .order_by(Image.created_at, Image.id)
    ).all()
    tags = tags_of_images(session, [image.id for image in images])
    project["images"] = [
        {"id": image.id, "name": image.name, "tags": dict(sorted(tags.get(image.id, {}).items()))}
        for image in images
    ]
    return {"projects": [project]}


def reset_project_tx(session: Session, project_id: str) -> None:
    """Everything the project holds gone: images and tags (through the tag write path, so the
    aggregate stays exact and cached bodies go stale), credentials, users, tokens, its name."""
    check_project_id(project_id)
    remove_project_tags(session, project_id)
    session.execute(delete(Image).where(Image.project_id == project_id))
    users = select(User.id).where(User.project_id == project_id)
    session.execute(delete(Token).where(Token.user_id.in_(users)))
    session.execute(delete(Token).where(Token.project_id == project_id))
    session.execute(delete(User).where(User.project_id == project_id))
    session.execute(delete(Credential).where(Credential.project_id == project_id))
    session.execute(delete(Project).where(Project.id == project_id))


def known_projects(session: Session) -> list[str]:
    """Every project that holds anything a reset removes."""
    found: set[str] = set()
    for column in (Image.project_id, Credential.project_id, User.project_id, Project.id):
        found.update(session.scalars(select(column).distinct()))
    found.update(session.scalars(select(TagCount.project_id).distinct()))
    return sorted(found)
