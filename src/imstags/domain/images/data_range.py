"""Which bytes of an image's data a download asks for (the ``Range`` header), as Glance reads it.

One range of the ``bytes`` unit: ``bytes=first-last``, ``bytes=first-`` or ``bytes=-suffix``.
A header that is malformed or asks for several ranges is ignored (the whole data, 200), as
WebOb, which Glance serves ranges with, does; a well-formed range that starts at or after the
end of the data is 416.
"""

from __future__ import annotations

import re

from imstags.errors import RangeNotSatisfiable

_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` (stop exclusive) within ``size`` bytes, or None for the whole data."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable(size)
        return max(size - suffix, 0), size
    start = int(first)
    stop = size if not last else int(last) + 1
    if last and stop <= start:
        return None  # last before first: not a valid range, ignored
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, min(stop, size)
