"""SQLAlchemy pool events turned into plain callbacks, for the metrics of the service layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from imstags.storage.database import Database


def watch_pool(
    db: Database,
    *,
    on_checkout: Callable[[], object],
    on_checkin: Callable[[], object],
    on_overflow: Callable[[], object],
) -> None:
    """Call ``on_checkout``/``on_checkin`` as sessions take and return pooled connections,
    and ``on_overflow`` when a checkout found the pool's steady connections all busy."""
    for engine in db.pooled_engines:
        pool = engine.pool

        def checkout(_conn: Any, _record: Any, _proxy: Any, pool: Any = pool) -> None:
            on_checkout()
            if isinstance(pool, QueuePool) and pool.checkedout() > pool.size():
                on_overflow()

        def checkin(_conn: Any, _record: Any) -> None:
            on_checkin()

        event.listen(pool, "checkout", checkout)
        event.listen(pool, "checkin", checkin)
