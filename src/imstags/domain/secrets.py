"""Encryption at rest for AK/SK secrets (Fernet: AES-128-CBC with HMAC-SHA256).

The signing scheme needs the secret itself to recompute signatures, so it cannot be hashed
like a password; it is encrypted with a key that lives outside the database.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE_NAME = "secret.key"


class SecretBox:
    """Seals with the first key; opens with any of them.

    ``key`` may list several keys separated by commas, newest first (``new,old``): while a key
    rotation rolls over several hosts, each reads secrets sealed under either key
    (``imstags secrets rotate``, docs/deploy.md).
    """

    def __init__(self, key: str | bytes) -> None:
        text = key.decode("ascii") if isinstance(key, bytes) else key
        self._fernet = MultiFernet([Fernet(part.strip()) for part in text.split(",")])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken as exc:
            raise ValueError(
                "A stored secret cannot be decrypted with this key; was IMSTAGS_SECRET_KEY changed?"
            ) from exc


def load_or_create_key(configured: str | None, data_dir: Path) -> str:
    """The configured key, else the one in ``data_dir``, else a new one written there (0600)."""
    if configured:
        return configured
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def replace_key_file(data_dir: Path, key: str) -> Path:
    """Write ``key`` as the data directory's key file (0600, atomically), the old one kept as
    ``secret.key.old``."""
    path = data_dir / KEY_FILE_NAME
    staged = data_dir / (KEY_FILE_NAME + ".new")
    staged.unlink(missing_ok=True)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    if path.exists():
        os.replace(path, data_dir / (KEY_FILE_NAME + ".old"))
    os.replace(staged, path)
    return path
