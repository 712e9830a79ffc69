"""One typed settings object for the whole service.

Values come from CLI flags, then ``IMSTAGS_*`` environment variables, then the defaults below.
The object is built once by the CLI (or by a test) and passed into the app factory; nothing in
the package reads the environment on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

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
        description="Failed logins (POST /v3/auth/tokens) one user may have from one client "
        "address within login_failure_window_seconds before that address's logins as that "
        "user get 429; 0 turns the limit off.",
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
        "always uses one): image and account writes. Tag writes on PostgreSQL use none (see "
        "write_connections).",
    )
    write_connections: int = Field(
        default=4,
        ge=1,
        le=64,
        description="PostgreSQL connections per process for tag writes, each one statement "
        "awaited on the event loop. More let more writes wait on the database at once; on a "
        "nearby server a few keep it busy.",
    )
    database_lock_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        description="Longest wait for a lock another transaction holds (PostgreSQL "
        "lock_timeout; SQLite's busy wait), then 503: a locked image delays other projects' "
        "writes at most this long.",
    )
    database_statement_timeout_seconds: float = Field(
        default=15.0,
        ge=0,
        description="PostgreSQL statement_timeout of the server's connections, then 503; 0 "
        "turns it off. The CLI's long commands (import, db check) are not limited.",
    )
    database_deadline_seconds: float = Field(
        default=20.0,
        gt=0,
        description="Longest a request waits for a write transaction, even on a database "
        "that is frozen and answers nothing; then 503.",
    )
    readiness_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest /readyz waits for the database (a read and a write), then 503.",
    )
    head_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A connection must complete a request head within this many seconds of "
        "opening (or of the previous response), else it is closed: slow-header clients.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open HTTP connections per process; more are closed when accepted. "
        "Lowered at start to fit the process's descriptor limit.",
    )
    keep_alive_timeout_seconds: int = Field(
        default=5, ge=1, description="An idle keep-alive connection is closed after this long."
    )
    log_level: str = "info"
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="Log lines as JSON objects or readable text; text on a terminal, else JSON.",
    )
    metrics_access: Literal["off", "loopback", "open"] = Field(
        default="loopback",
        description="Who may read GET /metrics: nobody (off: no route and no request "
        "counting), loopback clients only, or anyone (open).",
    )
    # Authentication hardening (issue 11): limits on what an unauthenticated caller can send.
    max_authorization_bytes: int = Field(
        default=4096,
        ge=256,
        description="Longest SDK-HMAC-SHA256 Authorization header accepted; longer is 401.",
    )
    signature_memo_max_head_bytes: int = Field(
        default=8192,
        ge=0,
        description="Signed parts of a bodiless request larger than this skip the memo of "
        "verified signatures (they are verified every time).",
    )
    unknown_access_key_cache_size: int = Field(
        default=256,
        ge=0,
        description="Unknown access keys remembered (for credential_cache_seconds) so that "
        "their repetition costs no database read.",
    )
    login_threads: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Threads per process that check passwords (argon2), apart from every "
        "other thread.",
    )
    login_queue: int = Field(
        default=16,
        ge=0,
        description="Password checks that may wait for a login thread; one more is 429.",
    )
    unsigned_payload_media_types: str = Field(
        # Image data uploads are not listed: they bind their data through the streamed hash
        # (services/auth.py: authenticate_streamed_body) and refuse UNSIGNED-PAYLOAD.
        default="application/openstack-images-v2.1-json-patch,"
        "application/openstack-images-v2.0-json-patch",
        description="Comma-separated Content-Types for which a signed X-Sdk-Content-Sha256: "
        "UNSIGNED-PAYLOAD is accepted (the Huawei SDK cannot sign those bodies: the native image "
        "PATCH); their bodies are then not bound by the signature. Empty: refused always.",
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Comma-separated addresses (or *) of reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; empty: none, the peer address is the client.",
    )
    admin_token: str | None = Field(
        default=None,
        description="Turns on the admin API (/_imstags/: seed, export, reset, fault rules) for "
        "requests carrying it in X-Imstags-Admin-Token. Unset: the admin API does not exist.",
    )
    admin_allow_remote: bool = Field(
        default=False,
        description="Let the admin API answer clients other than loopback (and requests that "
        "came through a proxy).",
    )
    faults_file: Path | None = Field(
        default=None, description="JSON or YAML file of fault injection rules loaded at start."
    )
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
