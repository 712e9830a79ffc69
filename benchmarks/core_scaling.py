"""Does the core endpoint's latency depend on the number of images? (issue 2)

Loads workload W with 1,000 and with 100,000 images (10 tags each from 50 keys x 20 values:
the same ~1,000 distinct pairs), starts the real server on each, and prints the median latency
of ``GET /v2/{project_id}/images/tags`` (signed, one connection, wrk) at both sizes and their
ratio. A ratio near 1 means the cost follows the distinct tags, not the images. It reuses
``harness.py``'s machinery and its work directory, so a second run skips the loading.

    .venv/bin/python -m benchmarks.core_scaling [--postgres postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks import harness

SIZES = (1_000, 100_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="PostgreSQL server URL instead of SQLite")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "imstags-bench"
    )
    args = parser.parse_args()
    wrk = harness.ensure_wrk()
    env = harness.server_env(args.workdir)
    medians: dict[int, float] = {}
    for size in SIZES:
        if args.postgres:
            target = harness.postgres_target(args.postgres, size)
        else:
            target = harness.sqlite_target(args.workdir, size)
        harness.load(env, target, args.workdir, size, fresh=False)
        credential = json.loads(
            harness.imstags(
                {**env, "IMSTAGS_DATABASE_URL": target.url},
                "credentials",
                "create",
                "--project-id",
                harness.PROJECT,
            ).stdout  # fmt: skip
        )
        with harness.serve(env, target, 1, args.workdir / "server.log") as server:
            url = f"{server.base_url}/v2/{harness.PROJECT}/images/tags"
            headers = harness.signed_headers("GET", url, credential["access"], credential["secret"])
            script = harness.lua_requests(
                args.workdir / "scaling.lua", [("GET", urlsplit(url).path, headers, b"")]
            )
            harness.run_wrk(wrk, url, connections=1, duration=1, script=script)  # warm-up
            result = harness.run_wrk(wrk, url, connections=1, duration=args.duration, script=script)
            if result.non_2xx or result.errors:
                raise SystemExit(f"failed requests at N={size}: {result}")
            medians[size] = result.p50_ms
            print(f"N={size:>7,}: median {result.p50_ms:.3f} ms, p99 {result.p99_ms:.3f} ms")
    small, large = SIZES
    print(f"ratio N={large:,} / N={small:,}: {medians[large] / medians[small]:.2f}")


if __name__ == "__main__":
    main()
