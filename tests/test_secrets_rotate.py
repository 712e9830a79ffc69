"""``imstags secrets rotate``: every stored secret re-encrypted under the new key, in one
transaction; signed requests keep working on a server with the new key; "new,old" reads
both while hosts roll over; a key that cannot open the secrets changes nothing."""

from __future__ import annotations

import json
import uuid

import httpx
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import select

from imstags.cli import main
from imstags.domain.secrets import KEY_FILE_NAME, SecretBox
from imstags.settings import Settings
from imstags.storage.database import Database
from imstags.storage.models import Credential
from tests.support.databases import empty_test_database
from tests.support.server import start_server
from tests.support.signing import sdk_signed_headers


def cli(settings: Settings, *args: str, key: str | None):
    env = {"IMSTAGS_SECRET_KEY": key} if key else {}
    return CliRunner().invoke(
        main,
        ["--database", settings.resolved_database_url, "--data-dir", str(settings.data_dir), *args],
        env=env,
        catch_exceptions=False,
    )


def make_credentials(settings: Settings, key: str | None, count: int) -> list[dict[str, str]]:
    issued = []
    for _ in range(count):
        result = cli(settings, "credentials", "create", "--project-id", uuid.uuid4().hex, key=key)
        assert result.exit_code == 0, result.output
        issued.append(json.loads(result.output))
    return issued


def stored_secrets(url: str) -> dict[str, str]:
    db = Database(url)
    try:
        with db.read() as session:
            rows = session.execute(select(Credential.access, Credential.secret_encrypted))
            return {access: sealed for access, sealed in rows}
    finally:
        db.dispose()


def signed_status(base_url: str, credential: dict[str, str]) -> int:
    url = f"{base_url}/v2/{credential['project_id']}/images/tags"
    headers = sdk_signed_headers("GET", url, credential["access"], credential["secret"])
    return httpx.get(url, headers=headers, timeout=10).status_code


def test_rotate_with_a_configured_key_reencrypts_every_secret(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with empty_test_database(tmp_path) as url:
        settings = Settings(database_url=url, data_dir=tmp_path / "data")
        issued = make_credentials(settings, old, 3)
        before = stored_secrets(url)

        rotated = cli(settings, "secrets", "rotate", "--new-key", new, key=old)
        assert rotated.exit_code == 0, rotated.output
        assert "re-encrypted 3 secrets" in rotated.output
        assert new not in rotated.output  # the operator's own key is not echoed back

        after = stored_secrets(url)
        assert set(after) == set(before)
        for credential in issued:
            sealed = after[credential["access"]]
            assert sealed != before[credential["access"]]
            assert SecretBox(new).open(sealed) == credential["secret"]
        # A server with only the new key verifies signatures made with the old pairs.
        new_only = settings.model_copy(update={"secret_key": new})
        with start_server(new_only, tmp_path / "new.log") as server:
            assert [signed_status(server.base_url, c) for c in issued] == [200, 200, 200]


def test_new_comma_old_opens_both_while_hosts_roll_over(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with empty_test_database(tmp_path) as url:
        settings = Settings(database_url=url, data_dir=tmp_path / "data")
        under_old = make_credentials(settings, old, 1)
        under_new = make_credentials(settings, new, 1)  # a host already on the new key
        both = settings.model_copy(update={"secret_key": f"{new},{old}"})
        with start_server(both, tmp_path / "both.log") as server:
            assert signed_status(server.base_url, under_old[0]) == 200
            assert signed_status(server.base_url, under_new[0]) == 200
        rotated = cli(settings, "secrets", "rotate", "--new-key", new, key=f"{new},{old}")
        assert "re-encrypted 2 secrets" in rotated.output
        for sealed in stored_secrets(url).values():
            SecretBox(new).open(sealed)  # every one now opens with the new key alone


def test_rotate_with_the_key_file_replaces_it_and_keeps_the_old(tmp_path):
    with empty_test_database(tmp_path) as url:
        settings = Settings(database_url=url, data_dir=tmp_path / "data")
        issued = make_credentials(settings, None, 2)  # the key file is created on first use
        key_file = settings.data_dir / KEY_FILE_NAME
        old = key_file.read_text().strip()

        rotated = cli(settings, "secrets", "rotate", key=None)
        assert rotated.exit_code == 0, rotated.output
        new = key_file.read_text().strip()
        assert new != old
        assert (settings.data_dir / (KEY_FILE_NAME + ".old")).read_text().strip() == old
        assert key_file.stat().st_mode & 0o777 == 0o600
        for credential in issued:
            assert SecretBox(new).open(stored_secrets(url)[credential["access"]])


def test_rotate_with_a_wrong_current_key_changes_nothing(tmp_path):
    right, wrong = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with empty_test_database(tmp_path) as url:
        settings = Settings(database_url=url, data_dir=tmp_path / "data")
        make_credentials(settings, right, 2)
        before = stored_secrets(url)
        refused = cli(settings, "secrets", "rotate", key=wrong)
        assert refused.exit_code == 1
        assert "Nothing was changed" in refused.output
        assert stored_secrets(url) == before
