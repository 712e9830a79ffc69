"""Image data and the image lifecycle: PUT/GET /v2/images/{id}/file, deactivate/reactivate,
with plain HTTP (streamed), openstacksdk, the ``openstack`` command and glanceclient, against
the real server on the suite's database."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from collections.abc import Iterator

import glanceclient
import httpx
import pytest

from imstags.domain.images.data_range import parse_byte_range
from imstags.errors import RangeNotSatisfiable
from imstags.settings import Settings
from tests.support.http import assert_error, signed_request
from tests.support.openstack import (
    OpenStackUser,
    connect,
    keystone_session,
    make_user,
    openstack_cli,
)
from tests.support.server import RunningServer, start_server
from tests.support.signing import sdk_signed_headers

DATA = os.urandom(3 * 1024 * 1024 + 17)  # more than one of the server's write pieces


@pytest.fixture
def user(db, project_id) -> OpenStackUser:
    return make_user(db, project_id)


@pytest.fixture
def api(server, user) -> Iterator[httpx.Client]:
    token = keystone_session(server.base_url, user).get_token()
    with httpx.Client(
        base_url=server.base_url, headers={"X-Auth-Token": token}, timeout=60
    ) as client:
        yield client


def new_image(api: httpx.Client, **fields: object) -> str:
    response = api.post("/v2/images", json={"name": "data", **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def pieces(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def upload(api: httpx.Client, image_id: str, data: bytes = DATA) -> httpx.Response:
    return api.put(
        f"/v2/images/{image_id}/file",
        content=pieces(data),  # streamed: chunked, no Content-Length
        headers={"Content-Type": "application/octet-stream"},
    )


def test_upload_streams_data_and_makes_the_image_active(api):
    image_id = new_image(api)

    response = upload(api, image_id)

    assert response.status_code == 204, response.text
    shown = api.get(f"/v2/images/{image_id}").json()
    assert shown["status"] == "active"
    assert shown["size"] == len(DATA)
    assert shown["checksum"] == hashlib.md5(DATA).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(DATA).hexdigest()


def test_download_streams_the_data_with_content_md5_and_length(api):
    image_id = new_image(api)
    upload(api, image_id)

    with api.stream("GET", f"/v2/images/{image_id}/file") as response:
        received = b"".join(response.iter_bytes())

    assert response.status_code == 200
    assert received == DATA
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-md5"] == hashlib.md5(DATA).hexdigest()
    assert response.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("range_header", "start", "stop"),
    [("bytes=10-19", 10, 20), ("bytes=100-", 100, None), ("bytes=-5", -5, None)],
)
def test_download_range_is_partial_content(api, range_header, start, stop):
    image_id = new_image(api)
    upload(api, image_id)

    response = api.get(f"/v2/images/{image_id}/file", headers={"Range": range_header})

    expected = DATA[start:stop]
    first = start if start >= 0 else len(DATA) + start
    assert response.status_code == 206
    assert response.content == expected
    assert response.headers["content-range"] == (
        f"bytes {first}-{first + len(expected) - 1}/{len(DATA)}"
    )


def test_download_range_past_the_end_is_416_and_a_malformed_one_is_ignored(api):
    image_id = new_image(api)
    upload(api, image_id)

    past = api.get(f"/v2/images/{image_id}/file", headers={"Range": f"bytes={len(DATA)}-"})
    malformed = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=1-2,5-6"})

    assert_error(past, 416, "IMG.0001")
    assert past.headers["content-range"] == f"bytes */{len(DATA)}"
    assert (malformed.status_code, malformed.content) == (200, DATA)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", (0, 1)),
        ("bytes=5-", (5, 10)),
        ("bytes=2-100", (2, 10)),
        ("bytes=-3", (7, 10)),
        ("bytes=-100", (0, 10)),
        ("bytes=4-2", None),  # last before first: ignored
        ("bytes=1-2,4-5", None),  # several ranges: ignored
        ("items=1-2", None),
    ],
)
def test_parse_byte_range_reads_one_range_as_glance_does(header, expected):
    assert parse_byte_range(header, 10) == expected


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=-0", "bytes=12-20"])
def test_parse_byte_range_past_the_end_is_not_satisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_byte_range(header, 10)


def test_download_of_an_image_without_data_is_204(api):
    image_id = new_image(api)

    response = api.get(f"/v2/images/{image_id}/file")

    assert (response.status_code, response.content) == (204, b"")


def test_second_upload_to_an_active_image_is_409(api):
    image_id = new_image(api)
    upload(api, image_id)

    response = upload(api, image_id, b"other data")

    assert_error(response, 409, "IMG.0035")
    assert api.get(f"/v2/images/{image_id}/file").content == DATA


def test_empty_upload_leaves_a_queued_image_queued(api):
    image_id = new_image(api)

    response = api.put(f"/v2/images/{image_id}/file", content=b"")

    assert response.status_code == 204
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_upload_and_download_of_another_projects_image_are_404(api, server, db):
    other = make_user(db, "b" * 32)
    token = keystone_session(server.base_url, other).get_token()
    image_id = new_image(api)
    upload(api, image_id)
    headers = {"X-Auth-Token": token}

    put = httpx.put(f"{server.base_url}/v2/images/{image_id}/file", content=b"x", headers=headers)
    get = httpx.get(f"{server.base_url}/v2/images/{image_id}/file", headers=headers)

    assert_error(put, 404, "IMG.0144")
    assert_error(get, 404, "IMG.0144")


def test_delete_removes_the_data_and_a_protected_image_keeps_it(api, settings):
    deleted = new_image(api)
    protected = new_image(api, protected=True)
    upload(api, deleted)
    upload(api, protected)
    store = settings.resolved_image_store_dir / "data"

    assert api.delete(f"/v2/images/{deleted}").status_code == 204
    refused = api.delete(f"/v2/images/{protected}")

    assert_error(refused, 400, "IMG.0028")
    assert not (store / deleted[:2] / deleted).exists()
    assert (store / protected[:2] / protected).stat().st_size == len(DATA)
    assert api.get(f"/v2/images/{protected}/file").content == DATA


def test_deactivated_image_cannot_be_downloaded_until_reactivated(api):
    image_id = new_image(api)
    upload(api, image_id)

    assert api.post(f"/v2/images/{image_id}/actions/deactivate").status_code == 204
    status = api.get(f"/v2/images/{image_id}").json()["status"]
    refused = api.get(f"/v2/images/{image_id}/file")
    assert api.post(f"/v2/images/{image_id}/actions/reactivate").status_code == 204

    assert status == "deactivated"
    assert_error(refused, 403, "IMG.0046")
    assert api.get(f"/v2/images/{image_id}/file").content == DATA
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "active"


def test_deactivate_of_a_queued_image_is_403(api):
    image_id = new_image(api)

    response = api.post(f"/v2/images/{image_id}/actions/deactivate")

    assert_error(response, 403, "IMG.0026")


def test_list_filters_and_sorts_by_size_and_hashes(api):
    small, large, empty = new_image(api), new_image(api), new_image(api)
    upload(api, small, b"small")
    upload(api, large)

    def ids(**params: object) -> list[str]:
        return [image["id"] for image in api.get("/v2/images", params=params).json()["images"]]

    assert ids(size_min=6) == [large]
    assert ids(size_max=5) == [small]
    assert ids(size=5) == [small]
    assert ids(checksum=hashlib.md5(DATA).hexdigest()) == [large]
    assert ids(os_hash_value=hashlib.sha512(b"small").hexdigest()) == [small]
    assert ids(sort="size:desc") == [large, small, empty]


def test_ims_listing_shows_status_and_size(api):
    image_id = new_image(api)
    upload(api, image_id)

    images = api.get("/v2/cloudimages", params={"id": image_id}).json()["images"]

    assert [(i["id"], i["status"], i["size"]) for i in images] == [(image_id, "active", len(DATA))]


def test_ims_update_of_a_deactivated_image_is_409(api):
    image_id = new_image(api)
    upload(api, image_id)
    api.post(f"/v2/images/{image_id}/actions/deactivate")

    response = api.patch(
        f"/v2/cloudimages/{image_id}", json=[{"op": "replace", "path": "/name", "value": "x"}]
    )

    assert_error(response, 409, "IMG.0035")


# --- AK/SK-signed uploads --------------------------------------------------------------------
# --- AK/SK-signed uploads --------------------------------------------------------------------


def signed_upload(
    server, credential, image_id: str, data: bytes, content_type: str, sent: bytes | None = None
) -> httpx.Response:
    """Signed by the SDK's signer: for ``application/octet-stream`` it declares
    ``X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD``; for a JSON content type it signs the body's
    SHA-256 without declaring it. ``sent`` replaces the signed data on the wire."""
    url = f"{server.base_url}/v2/images/{image_id}/file"
    headers = sdk_signed_headers(
        "PUT", url, credential.access, credential.secret, body=data,
        headers={"Content-Type": content_type},
    )  # fmt: skip
    return httpx.put(url, content=sent if sent is not None else data, headers=headers, timeout=60)


def declared_upload(server, credential, image_id: str, data: bytes, declared: str):
    """Signed over a declared hex ``X-Sdk-Content-Sha256`` (a signer that hashes the data);
    the SDK's signer uses a declared hash as it stands (for a JSON content type)."""
    url = f"{server.base_url}/v2/images/{image_id}/file"
    headers = sdk_signed_headers(
        "PUT", url, credential.access, credential.secret, body=data,
        headers={"Content-Type": "application/json", "X-Sdk-Content-Sha256": declared},
    )  # fmt: skip
    return httpx.put(url, content=data, headers=headers, timeout=60)


def signed_image(server, credential) -> str:
    response = signed_request(server.base_url, credential, "POST", "/v2/images", body=b"{}")
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def signed_status(server, credential, image_id: str) -> str:
    response = signed_request(server.base_url, credential, "GET", f"/v2/images/{image_id}")
    return str(response.json()["status"])


def test_signed_upload_whose_signature_covers_the_data_makes_the_image_active(server, credential):
    hashed, declared = signed_image(server, credential), signed_image(server, credential)

    by_body = signed_upload(server, credential, hashed, DATA, "application/json")
    by_header = declared_upload(
        server, credential, declared, DATA, hashlib.sha256(DATA).hexdigest()
    )

    assert by_body.status_code == 204, by_body.text
    assert by_header.status_code == 204, by_header.text
    assert signed_status(server, credential, hashed) == "active"
    assert signed_status(server, credential, declared) == "active"


@pytest.mark.parametrize("form", ["body hash", "declared hash"])
def test_signed_upload_whose_data_differs_from_what_was_signed_is_401(server, credential, form):
    image_id = signed_image(server, credential)
    tampered = DATA[:-1] + b"!"

    if form == "body hash":
        response = signed_upload(
            server, credential, image_id, DATA, "application/json", sent=tampered
        )
    else:
        signed_hash = hashlib.sha256(DATA).hexdigest()
        response = declared_upload(server, credential, image_id, tampered, signed_hash)

    assert_error(response, 401, "IMG.0030")
    assert signed_status(server, credential, image_id) == "queued"


def test_signed_upload_with_unsigned_payload_is_401(server, credential):
    image_id = signed_image(server, credential)

    response = signed_upload(server, credential, image_id, DATA, "application/octet-stream")

    assert_error(response, 401, "IMG.0030")
    assert signed_status(server, credential, image_id) == "queued"


# --- the real clients ------------------------------------------------------------------------


# openstacksdk opens the file itself and leaves closing it to the garbage collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_openstacksdk_create_image_from_a_file_waits_for_active(server, user, tmp_path):
    path = tmp_path / "disk.qcow2"
    path.write_bytes(DATA)
    conn = connect(server.base_url, user)

    image = conn.create_image(
        "sdk-upload", filename=str(path), disk_format="qcow2", container_format="bare", wait=True
    )
    downloaded = conn.image.download_image(image, stream=False)
    conn.close()

    assert image.status == "active"
    assert (image.size, image.checksum) == (len(DATA), hashlib.md5(DATA).hexdigest())
    assert downloaded.content == DATA


def test_openstack_cli_image_create_file_then_save_gives_the_same_bytes(server, user, tmp_path):
    source, saved = tmp_path / "in.raw", tmp_path / "out.raw"
    source.write_bytes(DATA)
    created = openstack_cli(
        server.base_url, user, "image", "create", "--file", str(source),
        "--disk-format", "raw", "cli-upload", "-f", "value", "-c", "id",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    image_id = created.stdout.strip()

    result = openstack_cli(server.base_url, user, "image", "save", "--file", str(saved), image_id)

    assert result.returncode == 0, result.stderr
    assert saved.read_bytes() == DATA
    assert hashlib.md5(saved.read_bytes()).hexdigest() == hashlib.md5(DATA).hexdigest()


def test_openstack_cli_image_save_of_an_image_without_data_writes_an_empty_file(
    server, user, api, tmp_path
):
    image_id = new_image(api)
    saved = tmp_path / "empty.raw"

    result = openstack_cli(server.base_url, user, "image", "save", "--file", str(saved), image_id)

    assert result.returncode == 0, result.stderr
    assert saved.read_bytes() == b""


def test_glanceclient_upload_and_download(server, user, tmp_path):
    source = tmp_path / "disk.raw"
    source.write_bytes(DATA)
    glance = glanceclient.Client("2", session=keystone_session(server.base_url, user))
    image = glance.images.create(name="gc-data", disk_format="raw", container_format="bare")

    with open(source, "rb") as data:  # glanceclient streams a file object in chunks
        glance.images.upload(image["id"], data)
    received = b"".join(glance.images.data(image["id"]))

    assert glance.images.get(image["id"])["status"] == "active"
    assert received == DATA


# --- limits, interruptions and crashes (servers of their own) ---------------------------------


@pytest.fixture
def own_server(settings, tmp_path, monkeypatch) -> Iterator[RunningServer]:
    monkeypatch.setenv("IMSTAGS_MAX_IMAGE_BYTES", str(1024 * 1024))
    with start_server(settings, tmp_path / "server.log") as running:
        yield running


def token_client(running: RunningServer, user: OpenStackUser) -> httpx.Client:
    token = keystone_session(running.base_url, user).get_token()
    return httpx.Client(base_url=running.base_url, headers={"X-Auth-Token": token}, timeout=60)


def partial_files(settings: Settings) -> list[str]:
    partial = settings.resolved_image_store_dir / "partial"
    return sorted(path.name for path in partial.iterdir()) if partial.is_dir() else []


def test_upload_past_the_size_limit_is_413_and_leaves_the_image_queued(own_server, user):
    with token_client(own_server, user) as client:
        image_id = new_image(client)
        declared = client.put(f"/v2/images/{image_id}/file", content=DATA)
        streamed = upload(client, image_id)

        assert_error(declared, 413, "IMG.0059")
        assert_error(streamed, 413, "IMG.0059")
        assert client.get(f"/v2/images/{image_id}").json()["status"] == "queued"
        assert client.get(f"/v2/images/{image_id}/file").status_code == 204


def start_raw_upload(running: RunningServer, token: str, image_id: str) -> socket.socket:
    """Declare 1 MiB and send half of it, then stop (the caller cuts or crashes)."""
    port = int(running.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 1048576\r\n\r\n"
    )
    sock.sendall(head.encode() + b"x" * 512 * 1024)
    return sock


def wait_for_status(client: httpx.Client, image_id: str, status: str) -> str:
    seen = ""
    for _ in range(100):  # bounded: at most about 20 s
        seen = client.get(f"/v2/images/{image_id}").json()["status"]
        if seen == status:
            break
        time.sleep(0.2)
    return seen


def test_cut_off_upload_leaves_the_image_queued_with_no_partial_data(own_server, user, settings):
    with token_client(own_server, user) as client:
        image_id = new_image(client)
        token = str(client.headers["X-Auth-Token"])
        sock = start_raw_upload(own_server, token, image_id)
        saving = wait_for_status(client, image_id, "saving")
        sock.close()

        status = wait_for_status(client, image_id, "queued")

        assert saving == "saving"
        assert status == "queued"
        assert not [name for name in partial_files(settings) if name.startswith(image_id)]
        assert client.get(f"/v2/images/{image_id}/file").status_code == 204


def test_crash_mid_upload_leaves_the_image_queued_and_reclaims_the_space(
    settings, user, tmp_path, monkeypatch
):
    with start_server(settings, tmp_path / "first.log") as first:
        with token_client(first, user) as client:
            image_id = new_image(client)
            sock = start_raw_upload(first, str(client.headers["X-Auth-Token"]), image_id)
            assert wait_for_status(client, image_id, "saving") == "saving"
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)
        sock.close()
    left_over = [name for name in partial_files(settings) if name.startswith(image_id)]

    with (
        start_server(settings, tmp_path / "second.log") as second,
        token_client(second, user) as client,
    ):
        status = client.get(f"/v2/images/{image_id}").json()["status"]
        retried = upload(client, image_id, b"after the crash")

        assert left_over  # the crash did leave partial data behind
        assert status == "queued"
        assert not [name for name in partial_files(settings) if name.startswith(image_id)]
        assert retried.status_code == 204
        assert client.get(f"/v2/images/{image_id}/file").content == b"after the crash"


def test_upload_when_the_store_fails_is_503_and_leaves_the_image_queued(
    settings, user, tmp_path, monkeypatch
):
    store = tmp_path / "store"
    monkeypatch.setenv("IMSTAGS_IMAGE_STORE_DIR", str(store))
    with (
        start_server(settings, tmp_path / "server.log") as running,
        token_client(running, user) as client,
    ):
        image_id = new_image(client)
        (store / "partial").rmdir()
        (store / "partial").write_bytes(b"")  # now the store cannot write

        response = upload(client, image_id)

        assert_error(response, 503, "IMG.0061")
        assert client.get(f"/v2/images/{image_id}").json()["status"] == "queued"
