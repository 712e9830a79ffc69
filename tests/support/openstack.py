"""openstacksdk and the ``openstack`` command pointed at a running imstags, with password auth."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import openstack
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from openstack.connection import Connection

from imstags.domain.identity import create_user_tx
from imstags.storage.database import Database

REGION = "RegionOne"


@dataclass(frozen=True)
class OpenStackUser:
    name: str
    password: str
    project_id: str


def make_user(db: Database, project_id: str, *, project_name: str | None = None) -> OpenStackUser:
    name = "user-" + uuid.uuid4().hex[:12]
    password = "pw-" + uuid.uuid4().hex
    db.write(lambda s: create_user_tx(s, name, password, project_id, project_name))
    return OpenStackUser(name, password, project_id)


def keystone_session(base_url: str, user: OpenStackUser) -> ks_session.Session:
    """keystoneauth's password session against ``/v3``, as glanceclient and others use it."""
    auth = v3.Password(
        auth_url=base_url + "/v3",
        username=user.name,
        password=user.password,
        user_domain_name="Default",
        project_id=user.project_id,
    )
    return ks_session.Session(auth=auth)


def connect(base_url: str, user: OpenStackUser) -> Connection:
    """What a user writes: password auth against ``/v3``, the image endpoint from the catalog."""
    return openstack.connect(
        auth_url=base_url + "/v3",
        username=user.name,
        password=user.password,
        project_id=user.project_id,
        user_domain_name="Default",
        region_name=REGION,
        identity_api_version="3",
        image_api_version="2",
    )


def openstack_cli(
    base_url: str, user: OpenStackUser, *args: str, program: str = "openstack"
) -> subprocess.CompletedProcess[str]:
    """Run the ``openstack`` executable (or ``program``, e.g. ``glance``) installed beside this
    interpreter."""
    executable = Path(sys.executable).with_name(program)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OS_") and key != "OPENSTACK_CONFIG_FILE"
    }
    env.update(
        {
            "OS_AUTH_TYPE": "password",
            "OS_AUTH_URL": base_url + "/v3",
            "OS_USERNAME": user.name,
            "OS_PASSWORD": user.password,
            "OS_PROJECT_ID": user.project_id,
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_REGION_NAME": REGION,
            "OS_IDENTITY_API_VERSION": "3",
            "OS_IMAGE_API_VERSION": "2",
            "OS_CLIENT_CONFIG_FILE": os.devnull,
        }
    )
    return subprocess.run(
        [str(executable), *args],
        env=env,
        stdin=subprocess.DEVNULL,  # as in CI: not a terminal, nothing to read
        capture_output=True,
        text=True,
        timeout=120,
    )
