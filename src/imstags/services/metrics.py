"""The process's Prometheus metrics (prometheus-client), and how they are exposed.

One module-level set of metric objects, as prometheus-client intends: the request path, the
summary cache and the writer threads bump them; ``GET /metrics`` renders them. With
``serve --workers K`` each worker writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``
(set by ``imstags serve`` before any worker starts) and the scrape, answered by whichever
worker gets it, sums the files of all of them: prometheus-client's multiprocess mode. The mode
is chosen when prometheus-client is imported, so the variable must be set before that.

The request counters are looked up once per (route template, method, status) and kept in a
dict: ``labels()`` takes a lock and builds a tuple, which is most of the per-request cost.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from imstags.storage.database import Database
from imstags.storage.pool_events import watch_pool

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_ACCESS = ("off", "loopback", "open")

# From 100 µs: the core endpoint answers a cached summary in well under a millisecond.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip

REQUESTS = Counter(
    "imstags_http_requests",
    "HTTP requests answered, by route template (never the raw path), method and status.",
    ("route", "method", "status"),
)
LATENCY = Histogram(
    "imstags_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template.",
    ("route", "method"),
    buckets=LATENCY_BUCKETS,
)
LOGIN_FAILURES = Counter(
    "imstags_login_failures", "Password logins (POST /v3/auth/tokens) refused with 401."
)
THROTTLED = Counter("imstags_throttled_requests", "Requests refused with 429 (throttled).")
SUMMARY_CACHE = Counter(
    "imstags_summary_cache",
    "Core endpoint summary lookups: hit (served from memory) or miss (rebuilt).",
    ("result",),
)
SUMMARY_REBUILDS = Counter(
    "imstags_summary_rebuilds", "Core endpoint summary bodies built from the tag aggregate."
)
FAULTS_INJECTED = Counter(
    "imstags_faults_injected",
    "Requests a fault-injection rule acted on, by effect (status, drop, delay, hold, kill).",
    ("effect",),
)
WRITES = Counter(
    "imstags_writes",
    "Write transactions by outcome: committed, refused (a 4xx rule) or failed; and retried "
    "(a lost race run again, counted per retry).",
    ("outcome",),
)
WRITER_QUEUE = Gauge(
    "imstags_writer_queue_depth",
    "Writes waiting for or running on the writer threads.",
    multiprocess_mode="livesum",
)
POOL_IN_USE = Gauge(
    "imstags_db_pool_in_use",
    "Database connections checked out of the SQLAlchemy pools.",
    multiprocess_mode="livesum",
)
POOL_OVERFLOW = Counter(
    "imstags_db_pool_overflow_checkouts",
    "Checkouts that found every pooled connection busy and opened an overflow connection "
    "(a sign that requests queue for the database).",
)

SUMMARY_HIT = SUMMARY_CACHE.labels("hit")
SUMMARY_MISS = SUMMARY_CACHE.labels("miss")
WRITE_COMMITTED = WRITES.labels("committed")
WRITE_REFUSED = WRITES.labels("refused")
WRITE_FAILED = WRITES.labels("failed")
WRITE_RETRIED = WRITES.labels("retried")

_instrumented: weakref.WeakSet[Database] = weakref.WeakSet()
_LOGIN_ROUTE = "/v3/auth/tokens"
_children: dict[tuple[str, str, int], tuple[Callable[[], None], Callable[[float], None]]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request; called once per request by the request middleware."""
    key = (route, method, status)
    child = _children.get(key)
    if child is None:
        child = (
            REQUESTS.labels(route, method, str(status)).inc,
            LATENCY.labels(route, method).observe,
        )
        _children[key] = child
    count, observe = child
    count()
    observe(seconds)
    if status >= 401 and (status == 429 or (status == 401 and route == _LOGIN_ROUTE)):
        (THROTTLED if status == 429 else LOGIN_FAILURES).inc()


def instrument_database(db: Database) -> None:
    """Pool occupancy and the write retries of one process's database (once per database:
    tests build several apps on one)."""
    if db in _instrumented:
        return
    _instrumented.add(db)
    watch_pool(
        db,
        on_checkout=POOL_IN_USE.inc,
        on_checkin=POOL_IN_USE.dec,
        on_overflow=POOL_OVERFLOW.inc,
    )
    db.on_retry = WRITE_RETRIED.inc


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


def exposition() -> tuple[bytes, str]:
    """The text format body of every metric (all workers' under multiprocess mode)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # the client leaves it unannotated
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
