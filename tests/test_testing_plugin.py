"""imstags.testing: the README's example file, the pytest plugin run as users run it, and the
server() context manager outside pytest."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from imstags.testing import server

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "tests" / "examples" / "test_readme_example.py"


def readme_example_block() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(
        r"<!-- tests/examples/test_readme_example.py -->\n```python\n(.*?)```\n", readme, re.S
    )
    assert found, "the README's example block is missing its marker"
    return found.group(1)


def test_readme_example_block_equals_the_file_the_suite_runs():
    assert readme_example_block() == EXAMPLE.read_text()


def test_readme_example_runs_with_plain_pytest(tmp_path, imstags_database_url):
    # given: the file copied alone into a directory, as a user would save it
    shutil.copy(EXAMPLE, tmp_path / "test_images.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    if imstags_database_url:
        env["IMSTAGS_PYTEST_DATABASE_URL"] = imstags_database_url
    # when: pytest runs it (`-p` because a source tree has not registered the entry point;
    # once installed, the entry point has the same name and is not loaded twice)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "imstags.testing.plugin", "test_images.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_server_context_manager_serves_a_seeded_project_outside_pytest_fixtures(tmp_path):
    document = {
        "projects": [
            {
                "id": "scripted",
                "credentials": [{"access": "AKSCRIPT000000000001", "secret": "sk-scripted"}],
                "images": [{"name": "web", "tags": {"env": "prod"}}],
            }
        ]
    }
    with server(seed=document) as emulator:
        exported = emulator.export("scripted")
        log_path = emulator.log_path
    assert exported["projects"][0]["credentials"][0]["secret"] == "sk-scripted"
    assert [image["tags"] for image in exported["projects"][0]["images"]] == [{"env": "prod"}]
    assert log_path is not None and not log_path.exists()  # its directory went with it
