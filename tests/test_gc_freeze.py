"""A served process keeps start-up's objects out of later garbage collections (``gc.freeze``),
which was the PostgreSQL core endpoint's p99 (docs/performance.md); apps built in-process, as
the tests build them, are not frozen."""

from __future__ import annotations

import gc
import subprocess
import sys

from imstags.api.app import create_app
from imstags.settings import Settings
from tests.support.server import server_environment

FACTORY_PROBE = """
import gc
from imstags.api.app import create_app_from_environment
app = create_app_from_environment()
print(gc.get_freeze_count())
"""


def test_the_served_factory_freezes_start_up_objects(settings: Settings, db) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FACTORY_PROBE],
        env=server_environment(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # The whole app: the framework, the drivers and the routes, tens of thousands of objects.
    assert int(done.stdout.split()[-1]) > 20_000


def test_an_app_built_in_process_is_not_frozen(settings: Settings, db) -> None:
    before = gc.get_freeze_count()
    create_app(settings)
    assert gc.get_freeze_count() == before
