"""Every error class against the two documents that fix it: the reference's error-code table
(``tests/data/reference_error_codes.csv``) and docs/decisions.md's "Error classes" table."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from imstags import errors
from imstags.errors import ImsError

REPOSITORY = Path(__file__).resolve().parent.parent
REFERENCE_CSV = REPOSITORY / "tests" / "data" / "reference_error_codes.csv"
DECISIONS = REPOSITORY / "docs" / "decisions.md"
ROW = re.compile(r"^\| `(\w+)` \| (IMG\.\d{4}) \| (\d{3}) \|(.*)\|\s*$")


def error_classes() -> list[type[ImsError]]:
    def below(cls: type[ImsError]) -> Iterator[type[ImsError]]:
        for sub in cls.__subclasses__():
            if sub.__module__ == errors.__name__:
                yield sub
                yield from below(sub)

    return sorted(set(below(ImsError)), key=lambda cls: cls.__name__)


def reference_codes() -> dict[str, dict[str, str]]:
    with REFERENCE_CSV.open() as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return {row["code"]: row for row in rows}


def decisions_table() -> dict[str, tuple[str, int, str]]:
    text = DECISIONS.read_text()
    section = text.split("### Error classes", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            name, code, status, why = match.groups()
            table[name] = (code, int(status), why.strip())
    return table


CLASSES = error_classes()


def test_reference_table_was_copied_whole():
    codes = reference_codes()
    assert len(codes) == 177
    assert all(re.fullmatch(r"IMG\.\d{4}", code) for code in codes)


def test_decisions_table_names_exactly_the_error_classes():
    assert sorted(decisions_table()) == [cls.__name__ for cls in CLASSES]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_error_class_matches_decisions_table(cls):
    code, status, _why = decisions_table()[cls.__name__]
    assert (cls.code, cls.status) == (code, status)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_error_class_code_is_the_references_or_its_departure_is_explained(cls):
    reference = reference_codes().get(cls.code)
    assert reference is not None, f"{cls.code} is not in the reference's error_codes.rst"
    _code, _status, why = decisions_table()[cls.__name__]
    same = str(cls.status) == reference["status"] and cls.message == reference["message"]
    if same:
        assert not why, f"{cls.__name__} is the reference's row: nothing to explain"
    else:
        assert why, (
            f"{cls.__name__} answers {cls.status} {cls.message!r} where the reference says "
            f"{reference['status']} {reference['message']!r}: docs/decisions.md must say why"
        )
