"""SIGKILL under concurrent writers loses no acknowledged write and leaves nothing half
written (a short round; benchmarks/crash_safety.py runs longer ones and prints the figures)."""

from __future__ import annotations

import uuid

from tests.support.crash import crash_round


def test_server_killed_mid_write_keeps_every_acknowledged_write(
    settings, db, make_credential, tmp_path
):
    credential = make_credential(uuid.uuid4().hex)
    report = crash_round(settings, db, credential, writers=4, seconds=1.5, log_dir=tmp_path)
    print(report.summary())
    assert report.problems == [], report.summary()
    assert report.acknowledged > 0
    assert report.acknowledged_found == report.acknowledged, report.summary()
    assert report.unanswered == report.unanswered_applied + report.unanswered_not_applied
    assert report.aggregate_exact
