"""Tag-filtered image listings against a loaded database: first page and a deep page.

Times ``domain/images/listing.run_list_query`` (what ``GET /v2/images?tag=...`` and
``GET /v2/cloudimages?tag=...`` run, without HTTP) for one tag and for two tags, the first page
and a page deep in the matches (reached with a ``marker``, as clients page), and prints the
median of ``--repeat`` runs and the first run (the coldest the operating system's cache lets
it be). Nothing is asserted; every case is bounded by ``--repeat`` and ``--budget`` seconds.

    python -m benchmarks.generate --images 100000 | imstags images import -
    python -m benchmarks.listing --database-url sqlite:///path/to/imstags.db

A SQLite file is opened read-only (``immutable``), so a benchmark database is never changed.
The default tags are two tags of one image of workload W: at 1M images each is on about
10,000 images, and both on about 100.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import and_, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased

from benchmarks.harness import PROJECT
from imstags.domain.images import listing
from imstags.storage.database import normalise_url
from imstags.storage.models import ImageTag


def engine_for(url: str) -> Engine:
    if url.startswith("sqlite:///") and "?" not in url:
        url = f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&immutable=1&uri=true"
    return create_engine(normalise_url(url))


@contextmanager
def session_of(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session
        session.rollback()


def matching_ids(session: Session, project: str, tags: list[tuple[str, str]]) -> list[str]:
    """Every image with all ``tags``, newest first: from the first tag's index range, the
    others checked by primary key (a reference the code under test does not share)."""
    first = aliased(ImageTag)
    stmt = select(first.image_id).where(
        first.project_id == project, first.key == tags[0][0], first.value == tags[0][1]
    )
    for key, value in tags[1:]:
        other = aliased(ImageTag)
        stmt = stmt.join(
            other, and_(other.image_id == first.image_id, other.key == key, other.value == value)
        )
    return list(session.scalars(stmt.order_by(first.created_at.desc(), first.image_id.desc())))


def timed(
    engine: Engine, params: list[tuple[str, str]], project: str, repeat: int, budget: float
) -> tuple[list[float], int]:
    times: list[float] = []
    found = 0
    deadline = time.monotonic() + budget
    for _ in range(repeat):
        query = listing.parse_list_query(project, params, default_limit=25)
        with session_of(engine) as session:
            start = time.perf_counter()
            page = listing.run_list_query(session, query)
            times.append(time.perf_counter() - start)
        found = len(page.records)
        if time.monotonic() > deadline:
            break
    return times, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--project-id", default=PROJECT)
    parser.add_argument("--tag", action="append", help="k=v (twice for two tags)")
    parser.add_argument("--limit", type=int, default=25, help="page size")
    parser.add_argument("--repeat", type=int, default=5, help="runs per case (median printed)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per case at most")
    args = parser.parse_args()
    tags = args.tag or ["key08=value00", "key36=value12"]
    pairs = [(tag.partition("=")[0], tag.partition("=")[2]) for tag in tags]
    engine = engine_for(args.database_url)
    cases: list[tuple[str, list[tuple[str, str]]]] = [("one tag", pairs[:1])]
    if len(pairs) > 1:
        cases.append(("two tags", pairs[:2]))
    print(f"{'case':<34} {'matches':>8} {'rows':>5} {'first ms':>10} {'median ms':>10} {'runs':>5}")
    for name, case_tags in cases:
        with session_of(engine) as session:
            ids = matching_ids(session, args.project_id, case_tags)
        base = [("tag", f"{k}={v}") for k, v in case_tags] + [("limit", str(args.limit))]
        deep = max(0, len(ids) * 3 // 4 - 1)
        variants = [("first page", base)]
        if ids:
            variants.append((f"page after match {deep + 1}", [*base, ("marker", ids[deep])]))
        variants.append(("first page, sort=name:asc", [*base, ("sort", "name:asc")]))
        for label, params in variants:
            times, rows = timed(engine, params, args.project_id, args.repeat, args.budget)
            print(
                f"{name + ', ' + label:<34} {len(ids):>8} {rows:>5} {times[0] * 1000:>10.1f}"
                f" {statistics.median(times) * 1000:>10.1f} {len(times):>5}"
            )
    engine.dispose()


if __name__ == "__main__":
    main()
