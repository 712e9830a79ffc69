"""A case-sensitive substring test that means the same on SQLite and PostgreSQL.

``LIKE`` would not do: SQLite's ignores ASCII case and PostgreSQL's does not, and both need
``%`` and ``_`` escaped. The position of one string in another does, under a different
function name on each database; :func:`contains_text` hides the name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import SQLCoreOperations
from sqlalchemy.sql.functions import FunctionElement


class _position(FunctionElement[int]):  # noqa: N801 (a SQL function, named as SQL names them)
    """1-based position of the second argument in the first, 0 when absent."""

    type = Integer()
    inherit_cache = True


@compiles(_position, "sqlite")
def _instr(element: _position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_position, "postgresql")
def _strpos(element: _position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


def contains_text(column: SQLCoreOperations[str], fragment: str) -> ColumnElement[bool]:
    """``fragment`` occurs in ``column``, case-sensitively (a non-empty fragment)."""
    return _position(column, fragment) > 0
