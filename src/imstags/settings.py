"""One typed settings object for the whole service.

Values come from CLI flags, then ``IMSTAGS_*`` environment variables, then the defaults below.
The object is built once by the CLI (or by a test) and passed into the app factory; nothing in
the package reads the environment on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "imstags"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMSTAGS_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; an SQLite file in data_dir when unset."
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    secret_key: str | None = Field(
        default=None,
        description="Fernet key that encrypts AK/SK secrets at rest. Generated into data_dir "
        "when unset; set it explicitly when several hosts share one PostgreSQL.",
    )
    host: str = "127.0.0.1"
    port: int = 9292
    workers: int = 1
    public_url: str | None = Field(
        default=None, description="Base URL clients reach this server at (service catalog)."
    )
    region: str = "RegionOne"
    sdk_date_window_seconds: int = 15 * 60
    credential_cache_seconds: float = 5.0
    token_ttl_seconds: int = 24 * 3600
    max_body_bytes: int = 1024 * 1024
    login_failures_per_user: int = Field(
        default=5,
        ge=0,
        description="Failed logins (POST /v3/auth/tokens) one user name may have within "
        "login_failure_window_seconds before its logins get 429; 0 turns the limit off.",
    )
    login_failures_per_client: int = Field(
        default=100,
        ge=0,
        description="The same limit per client address, across user names; 0 turns it off.",
    )
    login_failure_window_seconds: float = Field(default=60.0, ge=0)
    write_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Threads per process running write transactions on PostgreSQL (SQLite "
        "always uses one). More only pay when the database is far: each tag write waits on "
        "three round trips.",
    )
    log_level: str = "info"
    image_store_dir: Path | None = Field(
        default=None,
        description="Directory that holds uploaded image data (default: images/ in data_dir). "
        "Several hosts on one PostgreSQL share it on a mount that all of them see.",
    )
    max_image_bytes: int = Field(
        default=128 * 1024**3,
        ge=0,
        description="Largest image data one upload may store (the reference: under 128 GB); "
        "an upload is refused (413) as soon as it passes this.",
    )

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Environment and defaults, with the non-None ``overrides`` (CLI flags) on top."""
        return cls(**{k: v for k, v in overrides.items() if v is not None})

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'imstags.db'}"

    @property
    def resolved_image_store_dir(self) -> Path:
        return self.image_store_dir or self.data_dir / "images"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir
