"""Ansible's openstack.cloud collection against the real server: ``ansible-playbook`` runs the
playbook of the README twice, and the second run changes nothing.

``ansible-playbook`` is this interpreter's (ansible, which bundles openstack.cloud, is pinned in
the test extras). The modules run in a virtualenv with the openstacksdk of
``tests/ansible/module-requirements.txt``, made on first use from the package index (in
``IMSTAGS_ANSIBLE_VENV``, else ``.venv-ansible`` in the tree) and reused after that.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from tests.support.openstack import REGION, OpenStackUser, connect, make_user

HERE = Path(__file__).parent / "ansible"
PLAYBOOK = HERE / "images.yml"
REQUIREMENTS = HERE / "module-requirements.txt"
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


@pytest.fixture(scope="session")
def module_python() -> str:
    """The modules' interpreter: a virtualenv with the pinned openstacksdk, made once."""
    default = Path(__file__).parents[1] / ".venv-ansible"
    home = Path(os.environ.get("IMSTAGS_ANSIBLE_VENV") or default)
    python = home / "bin" / "python"
    stamp = home / "requirements.txt"
    wanted = REQUIREMENTS.read_text()
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        venv.EnvBuilder(clear=True, with_pip=True).create(home)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
            check=True,
            timeout=600,
        )
        stamp.write_text(wanted)
    return str(python)


def run_playbook(
    base_url: str, user: OpenStackUser, workdir: Path, python: str, playbook: Path = PLAYBOOK
) -> tuple[dict[str, int], subprocess.CompletedProcess[str]]:
    """``ansible-playbook`` as a user runs it, with a clouds.yaml naming the server."""
    clouds = {
        "clouds": {
            "imstags": {
                "auth": {
                    "auth_url": base_url + "/v3",
                    "username": user.name,
                    "password": user.password,
                    "project_id": user.project_id,
                    "user_domain_name": "Default",
                },
                "region_name": REGION,
                "identity_api_version": 3,
                "image_api_version": 2,
            }
        }
    }
    (workdir / "clouds.yaml").write_text(yaml.safe_dump(clouds))
    (workdir / "inventory").write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={python}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ANSIBLE_"))}
    env.update(
        {
            "OS_CLIENT_CONFIG_FILE": str(workdir / "clouds.yaml"),
            "ANSIBLE_HOME": str(workdir / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
        }
    )
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "inventory", str(playbook)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = [RECAP.match(line) for line in result.stdout.splitlines()]
    recap = next((m for m in found if m), None)
    assert recap is not None, result.stdout + result.stderr
    ok, changed, unreachable, failed = (int(n) for n in recap.groups())
    counts = {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}
    return counts, result


@pytest.fixture
def user(db, project_id) -> OpenStackUser:
    return make_user(db, project_id)


def test_playbook_converges_and_a_second_run_changes_nothing(server, user, tmp_path, module_python):
    first, result = run_playbook(server.base_url, user, tmp_path, module_python)
    assert (first["failed"], first["changed"]) == (0, 4), result.stdout

    second, result = run_playbook(server.base_url, user, tmp_path, module_python)

    assert (second["failed"], second["changed"], second["ok"]) == (0, 0, 6), result.stdout
    conn = connect(server.base_url, user)
    images = {image.name: image for image in conn.image.images()}
    conn.close()
    web = images["ansible-web"]
    assert sorted(web.tags) == ["env=prod", "golden", "role=web"]
    assert (web.os_distro, web.os_version, web.min_ram) == ("ubuntu", "22.04", 512)
    assert sorted(images["ansible-db"].tags) == ["env=prod", "role=db"]
    disk = images["ansible-disk"]
    data = (PLAYBOOK.parent / "disk.img").read_bytes()
    assert (disk.status, disk.size, disk.tags) == ("active", len(data), ["role=base"])
    assert disk.checksum == hashlib.md5(data).hexdigest()  # noqa: S324 - Glance's checksum


def test_readme_shows_the_playbook_that_is_tested():
    readme = (Path(__file__).parents[1] / "README.md").read_text()

    assert "```yaml\n" + PLAYBOOK.read_text() + "```" in readme


def test_a_task_with_two_values_for_one_key_fails_naming_it(server, user, tmp_path, module_python):
    # Before, the last value won and the task reported a change on every run.
    playbook = tmp_path / "two-values.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - openstack.cloud.image:\n        cloud: imstags\n        name: two\n"
        "        tags: [role=db, role=cache]\n        wait: false\n"
    )

    counts, result = run_playbook(server.base_url, user, tmp_path, module_python, playbook)

    assert counts["failed"] == 1, result.stdout
    assert "role" in result.stdout and "400" in result.stdout
