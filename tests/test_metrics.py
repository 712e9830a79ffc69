"""GET /metrics: a real Prometheus scrapes a running imstags and counts what the test sent;
all workers' requests under ``--workers 2``; who may read it; the sample alert rules."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from imstags.api.app import create_app
from tests.support.server import RunningServer, free_port, start_server
from tests.support.signing import sdk_signed_headers

CORE_ROUTE = "/v2/{project_id}/images/tags"
REPO = Path(__file__).resolve().parent.parent
ALERTS = REPO / "deploy" / "alerts.yml"


def ensure_prometheus() -> None:
    """Debian's prometheus package (server and promtool), installed when missing."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return
    install = ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"]
    if subprocess.run(install, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, check=True)
        subprocess.run(install, capture_output=True, check=True)


def send_core_requests(server: RunningServer, credential, count: int) -> None:
    url = f"{server.base_url}/v2/{credential.project_id}/images/tags"
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            headers = sdk_signed_headers("GET", url, credential.access, credential.secret)
            assert client.get(url, headers=headers).status_code == 200


def core_count(exposition: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "imstags_http_requests_total"
                and labels.get("route") == CORE_ROUTE
                and labels.get("status") == "200"
            ):
                total += sample.value
    return total


@pytest.fixture
def fresh_server(settings, db, tmp_path) -> Iterator[RunningServer]:
    """A server of its own, so that the counts are only this test's requests."""
    with start_server(settings, tmp_path / "server.log") as running:
        yield running


@pytest.fixture
def prometheus(tmp_path) -> Iterator[tuple[str, Callable[[str], None]]]:
    """A Prometheus server on a free loopback port: yields its URL and ``start(target)``,
    which writes a scrape config for ``host:port`` and starts the server."""
    ensure_prometheus()
    processes: list[subprocess.Popen[bytes]] = []
    config = tmp_path / "prometheus.yml"
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def start(target: str) -> None:
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: imstags\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        command = [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with (tmp_path / "prometheus.log").open("wb") as log:
            processes.append(subprocess.Popen(command, stdout=log, stderr=log))

    yield url, start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def query_until(url: str, promql: str, expected: float, timeout: float = 90.0) -> float | None:
    """The query's value once it equals ``expected`` (or the last value seen at the timeout)."""
    deadline = time.monotonic() + timeout
    seen: float | None = None
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
        except (httpx.TransportError, ValueError):
            time.sleep(0.5)
            continue
        result = answer.get("data", {}).get("result", [])
        if result:
            seen = float(result[0]["value"][1])
            if seen == expected:
                return seen
        time.sleep(0.5)
    return seen


def test_prometheus_scrapes_the_request_count_the_test_sent(fresh_server, credential, prometheus):
    url, start = prometheus
    sent = 23
    send_core_requests(fresh_server, credential, sent)
    start(fresh_server.base_url.removeprefix("http://"))
    promql = f'sum(imstags_http_requests_total{{route="{CORE_ROUTE}",status="200"}})'
    assert query_until(url, promql, float(sent)) == float(sent)
    # The cache's counters are there too: the first request built the summary.
    hits = query_until(url, 'sum(imstags_summary_cache_total{result="hit"})', float(sent - 1))
    assert hits == float(sent - 1)


def test_metrics_labels_are_route_templates_never_ids(fresh_server, credential):
    send_core_requests(fresh_server, credential, 2)
    text = httpx.get(fresh_server.base_url + "/metrics").text
    assert credential.project_id not in text
    assert core_count(text) == 2
    for name in (
        "imstags_http_request_duration_seconds_bucket",
        "imstags_writer_queue_depth",
        "imstags_db_pool_in_use",
        "imstags_writes_total",
        "imstags_login_failures_total",
        "imstags_throttled_requests_total",
        "process_resident_memory_bytes",
    ):
        assert name in text
    assert 'le="0.0001"' in text  # sub-millisecond answers resolve


def test_metrics_count_the_requests_of_every_worker(settings, db, credential, tmp_path):
    with start_server(settings, tmp_path / "workers.log", workers=2) as server:
        send_core_requests(server, credential, 40)
        # Whichever worker answers the scrape sums the files of both.
        counts = {core_count(httpx.get(server.base_url + "/metrics").text) for _ in range(6)}
    assert counts == {40.0}


def test_metrics_off_has_no_route(settings, db, tmp_path):
    args = ("--metrics-access", "off")
    with start_server(settings, tmp_path / "off.log", extra_args=args) as server:
        assert httpx.get(server.base_url + "/metrics").status_code == 404


def test_metrics_loopback_refuses_other_clients(settings, db):
    app = create_app(settings.model_copy(update={"metrics_access": "loopback"}))

    async def status_for(client: tuple[str, int]) -> int:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://imstags") as http:
            return (await http.get("/metrics")).status_code

    assert asyncio.run(status_for(("10.1.2.3", 5000))) == 403
    assert asyncio.run(status_for(("127.0.0.1", 5000))) == 200


def test_sample_alert_rules_pass_promtool():
    ensure_prometheus()
    checked = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
