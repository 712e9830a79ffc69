"""The relational schema. Alembic migrations are the only way it is built; a test checks that
the migrations and these models agree on both databases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Project(Base):
    """A tenant. Projects exist implicitly by id; a row gives one a name for Keystone scoping."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Image(Base):
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(32), default="queued")
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    # Glance's os_hidden: left out of the native image list unless asked for.
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    container_format: Mapped[str] = mapped_column(String(32), default="bare")
    disk_format: Mapped[str] = mapped_column(String(32), default="zvhd2")
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(64))
    # The data's multihash (Glance's os_hash_algo / os_hash_value): sha512 of what was stored.
    os_hash_algo: Mapped[str | None] = mapped_column(String(64))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    # IMS attributes that queries filter on get columns of their own.
    image_type: Mapped[str] = mapped_column(String(16), default="private")  # __imagetype
    os_type: Mapped[str | None] = mapped_column(String(16))  # __os_type
    platform: Mapped[str | None] = mapped_column(String(32))  # __platform
    os_version: Mapped[str | None] = mapped_column(String(128))  # __os_version
    virtual_env_type: Mapped[str] = mapped_column(String(32), default="FusionCompute")
    # Every other attribute (``__os_bit``, ``owner_specified.*``, ...) as a JSON object.
    properties: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_images_project_created", "project_id", "created_at", "id"),
        Index("ix_images_project_name", "project_id", "name"),
    )


class ImageTag(Base):
    """One tag of one image: at most one value per key (the primary key says so)."""

    __tablename__ = "image_tags"

    image_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), default="")
    # Both copied from the image (neither ever changes) so that "the images of project P with
    # tag k=v, newest first" is one index range, read in order and cut at the page's limit.
    project_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_image_tags_by_tag", "project_id", "key", "value", "created_at", "image_id"),
    )


class TagCount(Base):
    """How many images of a project carry (key, value): the core endpoint's aggregate.

    Kept exact in the same transaction as every tag write and image delete, so that reading a
    project's tags costs the number of distinct pairs, never the number of images. A row whose
    count reaches zero is deleted in that transaction.
    """

    __tablename__ = "tag_counts"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    image_count: Mapped[int] = mapped_column(BigInteger)


class TagVersion(Base):
    """A per-project counter bumped by every transaction that changes the aggregate.

    Processes cache the serialised core response keyed by this number, which is how many
    stateless processes on one database stay correct.
    """

    __tablename__ = "tag_versions"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class Credential(Base):
    """An AK/SK pair. The secret is stored encrypted (Fernet), never in clear."""

    __tablename__ = "credentials"

    access: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class User(Base):
    """A Keystone-style user of the single domain ``default``, with a role on one project."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    password_hash: Mapped[str] = mapped_column(Text)
    project_id: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Token(Base):
    """An issued token, stored only as its SHA-256 so that a database leak yields no tokens."""

    __tablename__ = "tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_tokens_expires_at", "expires_at"),)
