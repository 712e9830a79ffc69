"""Schema-driven fuzzing of the real server on every change: a small, derandomised budget.

Every operation of ``/openapi.json`` gets positive and negative data (and, for operations on an
image, data aimed at an image that exists), each request AK/SK-signed. The large run is
``benchmarks/fuzz.py``; docs/robustness.md has its figures.
"""

from __future__ import annotations

import os

from tests.support.fuzzing import fuzz

EXAMPLES = int(os.environ.get("IMSTAGS_FUZZ_EXAMPLES", "3"))


def test_fuzz_every_operation_no_5xx_no_hang_no_schema_violation(server, credential):
    report = fuzz(server.base_url, credential, max_examples=EXAMPLES)
    summary = report.summary() + "\n\n" + "\n\n".join(report.failures)
    assert report.total >= len(report.cases) > 10, summary
    assert report.server_errors == 0, summary
    assert report.hangs == 0, summary
    assert report.failure_count == 0, summary
