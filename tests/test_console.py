"""The web console at /console/, driven in headless Chromium against the real server.

Each test signs in as a user of a fresh project seeded through the official SDK, walks one
task as a person would (keyboard included), checks the result through the API, runs axe-core
in the page (no serious or critical violation) and takes a screenshot of the view. Set
``IMSTAGS_CONSOLE_SCREENSHOTS=docs/console`` to write the screenshots where docs/console.md
shows them; otherwise they go to the test's temporary directory.

Every request the page makes must stay on the server's origin (others are aborted and fail the
test), and no Content-Security-Policy violation or uncaught script error may occur.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from imstags.api.console import CONSOLE_DIR
from tests.support.browser import CHROMIUM_ARGS, axe_source, axe_violations, ensure_chromium
from tests.support.openstack import OpenStackUser, make_user
from tests.support.tagging import create_image, tags_of

CROWDED = [
    "env=prod", "tier=batch", "team=data", "owner=ops", "cost-center=cc-42",
    "backup=weekly", "os=debian-12", "region=eu-de", "app=etl", "ticket=OPS-1234",
]  # fmt: skip
IMAGES = {
    "web-frontend-1": ["env=prod", "tier=web", "team=payments"],
    "web-frontend-2": ["env=prod", "tier=web"],
    "db-primary": ["env=prod", "tier=db", "backup=daily"],
    "db-replica": ["env=staging", "tier=db"],
    "build-agent": ["env=dev", "os=debian-12"],
    "legacy-ubuntu": ["deprecated"],
    "etl-worker": CROWDED,  # already at the 10-tag limit
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = os.environ.get("IMSTAGS_CONSOLE_SCREENSHOTS")
    folder = Path(target) if target else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def seeded(ims, db, project_id) -> tuple[OpenStackUser, dict[str, str]]:
    """A user of the test's project, and the project's images by name (created in order)."""
    ids = {name: create_image(ims, *tags, name=name) for name, tags in IMAGES.items()}
    return make_user(db, project_id), ids


class Watched:
    """A page whose foreign requests, CSP violations and script errors are recorded."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.foreign: list[str] = []
        self.problems: list[str] = []
        self.api_calls: list[tuple[str, str, str | None]] = []
        origin = base_url + "/"

        def guard(route, request):
            if request.url.startswith(origin):
                route.continue_()
            else:
                self.foreign.append(request.url)
                route.abort()

        page.context.route("**/*", guard)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on(
            "console",
            lambda msg: (
                self.problems.append(msg.text)
                if "Content Security Policy" in msg.text or "Refused to" in msg.text
                else None
            ),
        )
        page.on(
            "request",
            lambda request: self.api_calls.append((request.method, request.url, request.post_data)),
        )

    def check(self) -> None:
        assert self.foreign == []
        assert self.problems == []


@pytest.fixture
def watched(browser: Browser, server) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    watched = Watched(page, server.base_url)
    yield watched
    context.close()
    watched.check()


def sign_in(page: Page, base_url: str, user: OpenStackUser, route: str = "") -> None:
    page.goto(base_url + "/console/" + route)
    page.get_by_label("User name").fill(user.name)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def assert_accessible(page: Page, axe: str) -> None:
    # The bar and the page are ours; the rendering inside #api is Swagger UI's (its own
    # contrast and nesting violations are listed in docs/console.md), checked here only for
    # script errors and CSP violations.
    violations = axe_violations(page, axe, exclude=("#api",))
    assert violations == [], json.dumps(violations, indent=1)


def test_console_sign_in_with_the_keyboard_shows_the_tag_overview(
    server, seeded, watched, axe, shots
):
    user, _ = seeded
    page = watched.page
    page.goto(server.base_url + "/console/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert_accessible(page, axe)
    page.screenshot(path=shots / "sign-in.png")

    # Only the keyboard: the user name field has focus, Tab to the password, Enter submits.
    page.keyboard.type(user.name)
    page.keyboard.press("Tab")
    page.keyboard.type(user.password)
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Tags", level=1)).to_be_focused()
    assert page.evaluate("document.cookie") == ""
    stored = json.loads(page.evaluate("sessionStorage.getItem('imstags.console.session')"))
    assert stored["projectId"] == user.project_id
    keys = page.get_by_role("list", name="Tag keys").locator(".key-name")
    expect(keys).to_have_text(
        ["app", "backup", "cost-center", "deprecated", "env", "os", "owner", "region", "team",
         "ticket", "tier"]
    )  # fmt: skip

    # Open "env" with the keyboard: each value with its number of images.
    env = page.get_by_role("button", name=re.compile(r"^env\b"))
    env.focus()
    page.keyboard.press("Enter")
    expect(env).to_have_attribute("aria-expanded", "true")
    counts = page.get_by_role("table", name="Images per value of env")
    expect(counts.locator("tbody tr")).to_have_text(
        [re.compile(r"dev\s*1"), re.compile(r"prod\s*4"), re.compile(r"staging\s*1")]
    )
    # The counts were asked for that key's values only, one count action per value.
    count_bodies = [
        json.loads(body)
        for method, url, body in watched.api_calls
        if method == "POST" and url.endswith("/images/resource_instances/action")
    ]
    assert sorted(b["tags"][0]["values"][0] for b in count_bodies) == ["dev", "prod", "staging"]
    assert {b["action"] for b in count_bodies} == {"count"}
    assert {b["tags"][0]["key"] for b in count_bodies} == {"env"}
    assert_accessible(page, axe)
    page.screenshot(path=shots / "overview.png", full_page=True)

    # The filter box narrows keys by key or value.
    page.get_by_label("Filter keys and values").fill("debian")
    expect(keys).to_have_text(["os"])
    page.get_by_label("Filter keys and values").fill("ti")
    expect(keys).to_have_text(["ticket", "tier"])


def test_console_filter_images_by_a_tag_picked_in_the_overview(server, seeded, watched, axe, shots):
    user, _ = seeded
    page = watched.page
    sign_in(page, server.base_url, user)

    page.get_by_role("link", name="web", exact=True).first.click()

    expect(page.get_by_role("heading", name="Images", level=1)).to_be_visible()
    rows = page.locator("table.images tbody tr th")
    expect(rows).to_have_count(2)
    assert sorted(rows.all_inner_texts()) == ["web-frontend-1", "web-frontend-2"]
    expect(page.get_by_role("list", name="Tag filters")).to_contain_text("tier")

    # A second tag narrows further; the filter chip removes it again.
    page.get_by_label("Tag", exact=True).fill("team=payments")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_text(["web-frontend-1"])
    assert_accessible(page, axe)
    page.get_by_role("button", name="Remove the filter team=payments").click()
    expect(rows).to_have_count(2)

    # Name and status filters, and the API's message for a filter it refuses.
    page.get_by_label("Name (exact)").fill("web-frontend-2")
    page.get_by_label("Status").select_option("queued")
    page.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_text(["web-frontend-2"])
    page.goto(server.base_url + "/console/#/images")
    expect(rows).to_have_count(len(IMAGES))
    assert_accessible(page, axe)
    page.screenshot(path=shots / "images.png", full_page=True)


def test_console_edit_tags_shows_the_api_error_next_to_the_field(
    server, seeded, watched, ims, axe, shots
):
    user, ids = seeded
    page = watched.page
    image_id = ids["web-frontend-1"]
    sign_in(page, server.base_url, user, f"#/images/{image_id}")
    expect(page.get_by_role("heading", name="web-frontend-1", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Tags (3 of 10)")).to_be_visible()

    # Change a value in place.
    page.get_by_label("Value of env").fill("staging")
    page.get_by_role("form", name="Tag env").get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved env.")).to_be_visible()
    # A key the API refuses: its message, code included, next to the key field.
    page.get_by_label("Key", exact=True).fill("a=b")
    page.get_by_label("Value", exact=True).fill("x")
    page.get_by_role("button", name="Add tag").click()
    key_field = page.get_by_label("Key", exact=True)
    expect(key_field).to_have_attribute("aria-invalid", "true")
    error = page.locator(".tag-add .field-error").first
    expect(error).to_have_text("IMG.0115: The tag key 'a=b' must not contain '='.")
    expect(key_field).to_be_focused()
    assert_accessible(page, axe)
    page.screenshot(path=shots / "image.png", full_page=True)

    # Fixed, it is added; and a tag is removed.
    key_field.fill("owner")
    page.get_by_label("Value", exact=True).fill("alice")
    page.get_by_role("button", name="Add tag").click()
    expect(page.get_by_role("heading", name="Tags (4 of 10)")).to_be_visible()
    page.get_by_role("form", name="Tag team").get_by_role("button", name="Remove").click()
    expect(page.get_by_role("heading", name="Tags (3 of 10)")).to_be_visible()

    assert tags_of(ims, image_id) == {"env": "staging", "tier": "web", "owner": "alice"}


def test_console_batch_tag_three_images_and_see_one_refused_at_the_limit(
    server, seeded, watched, ims, axe, shots
):
    user, ids = seeded
    page = watched.page
    sign_in(page, server.base_url, user, "#/images")
    for name in ("web-frontend-2", "db-replica", "etl-worker"):
        page.get_by_role("checkbox", name=f"Select {name}").check()
    expect(page.get_by_text("3 images selected.")).to_be_visible()

    page.get_by_role("form", name="Batch tagging").get_by_label("Key", exact=True).fill("patch")
    page.get_by_role("form", name="Batch tagging").get_by_label("Value", exact=True).fill("2026-11")
    page.get_by_role("button", name="Apply to selected images").click()

    results = page.get_by_role("list", name="Results per image")
    expect(results.locator("li")).to_have_count(3)
    expect(page.locator("label[for=batch-progress]")).to_have_text(
        "2 of 3 images tagged; 1 refused."
    )
    expect(page.locator("#batch-progress")).to_have_attribute("value", "3")
    expect(results.locator("li.failed")).to_have_text(
        [re.compile(r"^Refused etl-worker: IMG\.0116: .*10")]
    )
    expect(results.locator("li.ok")).to_have_count(2)
    # The list shows the new chips without a reload.
    row = page.locator("table.images tbody tr", has_text="db-replica")
    expect(row.locator(".chip", has_text="patch")).to_be_visible()
    assert_accessible(page, axe)
    page.screenshot(path=shots / "batch.png", full_page=True)

    assert tags_of(ims, ids["web-frontend-2"])["patch"] == "2026-11"
    assert tags_of(ims, ids["db-replica"])["patch"] == "2026-11"
    assert "patch" not in tags_of(ims, ids["etl-worker"])


def test_console_upload_image_data_with_a_progress_bar(server, seeded, watched, axe, shots):
    user, ids = seeded
    page = watched.page
    image_id = ids["build-agent"]
    data = bytes(range(256)) * 4096  # 1 MiB, so the bar has something to follow
    sign_in(page, server.base_url, user, f"#/images/{image_id}")
    expect(page.get_by_role("heading", name="Image data")).to_be_visible()

    # Keyboard: focus the file field, Enter on Upload submits it.
    page.get_by_label("Image file").set_input_files(
        {"name": "build-agent.raw", "mimeType": "application/octet-stream", "buffer": data}
    )
    page.get_by_role("button", name="Upload").focus()
    page.keyboard.press("Enter")

    expect(page.locator("label[for=upload-progress]")).to_have_text(
        "1.0 MiB of 1.0 MiB sent (100%)"
    )
    expect(page.locator("#upload-progress")).to_have_attribute("value", str(len(data)))
    expected_md5 = hashlib.md5(data).hexdigest()
    status = page.get_by_role("form", name="Image data").get_by_role("status")
    expect(status).to_have_text(
        f"Uploaded: the image is active, {len(data)} bytes, checksum {expected_md5}."
    )
    properties = page.locator("dl.properties")
    expect(properties).to_contain_text("active")
    expect(properties).to_contain_text(expected_md5)
    assert_accessible(page, axe)
    page.screenshot(path=shots / "upload.png", full_page=True)

    # A second upload is refused: the API's 409 message next to the file field.
    page.get_by_label("Image file").set_input_files(
        {"name": "again.raw", "mimeType": "application/octet-stream", "buffer": b"again"}
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".upload .field-error")).to_have_text(
        "IMG.0035: Image status transition from active to saving is not allowed: "
        "an image's data can be uploaded once."
    )
    expect(page.get_by_role("form", name="Image data")).to_contain_text("This image is active")
    # On a narrow screen the detail view, upload included, needs no sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_role("button", name="Upload")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.get_by_label("Image file")).to_have_attribute("aria-invalid", "true")

    token = json.loads(page.evaluate("sessionStorage.getItem('imstags.console.session')"))["token"]
    headers = {"X-Auth-Token": token}
    url = f"{server.base_url}/v2/images/{image_id}"
    image = httpx.get(url, headers=headers).json()
    assert (image["status"], image["size"]) == ("active", len(data))
    assert image["checksum"] == expected_md5
    assert httpx.get(url + "/file", headers=headers).content == data


def test_console_sign_out_revokes_the_token(server, seeded, watched):
    user, _ = seeded
    page = watched.page
    sign_in(page, server.base_url, user)
    token = json.loads(page.evaluate("sessionStorage.getItem('imstags.console.session')"))["token"]
    assert httpx.get(server.base_url + "/v2/images", headers={"X-Auth-Token": token}).is_success

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(
        page.get_by_role("form", name="Sign in").get_by_text("You are signed out.")
    ).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    response = httpx.get(server.base_url + "/v2/images", headers={"X-Auth-Token": token})
    assert response.status_code == 401


def test_console_sign_in_with_a_wrong_password_shows_the_api_message(server, seeded, watched):
    user, _ = seeded
    page = watched.page
    page.goto(server.base_url + "/console/")
    page.get_by_label("User name").fill(user.name)
    page.get_by_label("Password").fill("not-" + user.password)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("IMG.0030")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("sessionStorage.length") == 0


def test_console_on_a_narrow_screen_fits_without_sideways_scrolling(
    server, seeded, browser, axe, shots
):
    user, _ = seeded
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    page = context.new_page()
    watched = Watched(page, server.base_url)
    try:
        sign_in(page, server.base_url, user, "#/images")
        expect(page.locator("table.images tbody tr")).to_have_count(len(IMAGES))
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert_accessible(page, axe)
        page.screenshot(path=shots / "narrow.png")
    finally:
        context.close()
    watched.check()


def test_console_api_reference_renders_the_openapi_document_offline(server, watched, axe, shots):
    page = watched.page
    page.goto(server.base_url + "/console/")
    page.get_by_role("link", name="API reference").click()

    expect(page.locator(".opblock-summary-path", has_text="/v2/{project_id}/images/tags").first)
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 20
    page.screenshot(path=shots / "api-reference.png")
    # The bar and links are ours; Swagger UI's own markup is its authors' (checked for script
    # errors and CSP violations above, not for axe rules).
    # The bar and the page are ours; the rendering inside #api is Swagger UI's (its own
    # contrast and nesting violations are listed in docs/console.md), checked here only for
    # script errors and CSP violations.
    violations = axe_violations(page, axe, exclude=("#api",))
    assert violations == [], json.dumps(violations, indent=1)


def test_console_files_are_served_with_a_strict_csp_and_no_external_address(server):
    index = httpx.get(server.base_url + "/console/")
    assert index.status_code == 200
    csp = index.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert index.headers["X-Content-Type-Options"] == "nosniff"
    assert "set-cookie" not in index.headers
    viewer = httpx.get(server.base_url + "/console/api-reference.html")
    assert "script-src 'self';" in viewer.headers["Content-Security-Policy"]
    redirect = httpx.get(server.base_url + "/console")
    assert redirect.status_code == 308
    assert httpx.get(server.base_url + "/console/viewer/swagger-ui-bundle.js").status_code == 200
    for path in ("/console/nope.js", "/console/viewer/index.html", "/console/..%2Fapp.py"):
        response = httpx.get(server.base_url + path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "IMG.0121"

    for file in CONSOLE_DIR.iterdir():
        text = file.read_text(encoding="utf-8")
        addresses = re.findall(r"(?:https?:)?//[\w.-]+\.\w+", text)
        assert [a for a in addresses if not a.endswith("//www.w3.org")] == [], file.name  # xmlns
        if file.suffix == ".html":
            assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) is None, file.name
            assert re.search(r"\son\w+=", text) is None, file.name
