"""Headless Chromium for the console tests: Debian's browser, driven by Playwright for Python.

Playwright's own browser download is never used (it cannot reach the network here and would
pin another Chromium); the tests launch the system's ``chromium`` by path, installing Debian's
package with apt-get first when it is missing. The accessibility check runs axe-core inside the
page from the copy that the ``axe-playwright-python`` package ships (no download either).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")
# Without these, Chromium keeps trying to reach Google's services at start-up; the tests'
# traffic must stay on loopback.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # the suite runs as root in CI, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure_chromium() -> str:
    """The system Chromium's path, installed from Debian's packages when missing."""
    path = find_chromium()
    if path:
        return path
    if os.geteuid() != 0:
        raise RuntimeError(
            "The console tests need Chromium: run 'apt-get install chromium' as root."
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "chromium"],
        check=True,
        env=env,
        timeout=1200,
    )
    path = find_chromium()
    if path is None:
        raise RuntimeError("apt-get installed chromium but no chromium executable is on PATH.")
    return path


def axe_source() -> str:
    """axe-core's ``axe.min.js`` as the ``axe-playwright-python`` package ships it."""
    spec = importlib.util.find_spec("axe_playwright_python")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("axe-playwright-python is not installed (pip install -e '.[test]').")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder / "axe.min.js").read_text(encoding="utf-8")


SERIOUS = ("serious", "critical")


def axe_violations(
    page: Any, source: str, *, exclude: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page as it is now (WCAG 2.x A/AA and
    best practices), leaving out the parts that match the ``exclude`` selectors. Evaluated
    through the DevTools protocol, which the page's CSP does not govern, so the check needs
    no hole in the policy."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(source)
    results = page.evaluate(
        """async (exclude) => {
            const context = {include: [['html']], exclude: exclude.map(s => [s])};
            const r = await axe.run(context, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                                'best-practice']},
                resultTypes: ['violations'],
            });
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(n => n.target.join(" ")).slice(0, 5), count: v.nodes.length}));
        }""",
        list(exclude),
    )
    return [v for v in results if v["impact"] in SERIOUS]
