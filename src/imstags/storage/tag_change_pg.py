"""A tag write on PostgreSQL in one round trip: the ``imstags_change_tags`` function, called
from the event loop.

The Python write path (:mod:`.tag_rows`) needs three round trips per write (lock and read,
write, commit) and about a millisecond of driver Python on a writer thread, which held tag
writes under 1,000 a second. The same work as one PL/pgSQL function (created by migration 0006)
is one statement: it locks the image row with the visibility rule of
:func:`~.visibility.image_for_write`, reads the image's tags, computes the desired set, checks
the requirements and the 10-tag limit, writes the difference, the ``tag_counts`` aggregate (in
the (key, value) code-point order of every other writer) and the version bump. It runs in
autocommit mode: one statement is one transaction, durable once answered.

Why this works under concurrency: a VOLATILE PL/pgSQL function in READ COMMITTED takes a new
snapshot for each statement it runs, so the statement that reads the tags, which starts after
the lock was granted, sees everything the previous holder of the lock committed (the Python
path gets the same by sending lock and read as two statements).

The call goes out on asyncpg connections of a small pool of their own, awaited on the event
loop: no thread hop, and about half the driver CPU of psycopg. Server-side limits
(``lock_timeout``, ``statement_timeout``) are the engine's; a deadlock or serialisation failure
is retried whole, as ``Database._retrying`` does; a lost connection is a 503. The caller
(``WriteRunner.run_on_loop``) bounds the whole wait, for a database that answers nothing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import asyncpg

from imstags.errors import ServiceUnavailable

log = logging.getLogger(__name__)

FUNCTION = "imstags_change_tags"
# Parameters: project, image, upsert keys, upsert values, removal keys, removal values (NULL:
# any value), required key (NULL: none), required value (NULL: any), the tag limit.
_CALL = (
    "SELECT outcome, tag_count FROM imstags_change_tags("
    "$1::text, $2::text, $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::text, $8::text, $9::integer)"
)
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# What a lost or unreachable server raises in asyncpg.
_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


class TagChangeStatus(enum.Enum):
    """The function's ``outcome`` column."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    IMAGE_NOT_FOUND = "image_not_found"
    TAG_MISSING = "tag_missing"
    QUOTA_EXCEEDED = "quota_exceeded"


class TagChangeOutcome(NamedTuple):
    """What one call answered; ``tag_count`` is the image's tag count after the change (or
    the count it would have had, when the limit refused it)."""

    status: TagChangeStatus
    tag_count: int


async def _keep_session(_connection: Any) -> None:
    """The pool's reset between uses: none. The connections run single autocommit statements
    and change no session state, and asyncpg's default reset is a round trip per write."""


class PgTagChanger:
    """The asyncpg pool for tag writes, and the one call made on it."""

    def __init__(
        self,
        conninfo: str,
        *,
        connections: int,
        lock_timeout: float | None,
        statement_timeout: float | None,
        connect_timeout: float = 5.0,
        attempts: int = 5,
    ) -> None:
        self._conninfo = conninfo
        self._connections = connections
        self._connect_timeout = connect_timeout
        self._attempts = attempts
        self._server_settings = {
            name: str(int(seconds * 1000))
            for name, seconds in (
                ("lock_timeout", lock_timeout),
                ("statement_timeout", statement_timeout),
            )
            if seconds
        }
        self._opening: asyncio.Task[Any] | None = None  # the pool, once opened
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        # Called once per call run again after a lost race (the retry counter).
        self.on_retry: Callable[[], object] = lambda: None

    async def change(
        self,
        project_id: str,
        image_id: str,
        *,
        upserts: Mapping[str, str],
        removals: Sequence[tuple[str, str | None]],
        required: tuple[str, str | None] | None,
        max_tags: int,
    ) -> TagChangeOutcome:
        """Run one tag change as one statement; retried whole after a deadlock or a
        serialisation failure, a 503 when the server is out of reach."""
        required_key, required_value = required if required is not None else (None, None)
        arguments = (
            project_id,
            image_id,
            list(upserts),
            list(upserts.values()),
            [key for key, _ in removals],
            [value for _, value in removals],
            required_key,
            required_value,
            max_tags,
        )
        for number in range(1, self._attempts + 1):
            try:
                pool = await self._open_pool()
                async with pool.acquire() as connection:
                    row = await connection.fetchrow(_CALL, *arguments)
                return TagChangeOutcome(TagChangeStatus(row[0]), int(row[1]))
            except _RETRYABLE as exc:
                if number == self._attempts:
                    raise
                log.info("retrying tag change after %s (attempt %d)", exc, number)
                self.on_retry()
                await asyncio.sleep(0.005 * number)
            except _CONNECTION_LOST as exc:
                log.warning("database unavailable: %r", exc)
                raise ServiceUnavailable("The database is unavailable.") from exc
        raise AssertionError("unreachable")

    async def _open_pool(self) -> Any:
        """The pool of the running event loop, opened on first use (without connecting: the
        connections open as writes need them, each bounded by the connect timeout)."""
        loop = asyncio.get_running_loop()
        opening = self._opening
        if opening is None or self._pool_loop is not loop or _failed(opening):
            self._abandon()
            opening = loop.create_task(self._new_pool())
            self._opening, self._pool_loop = opening, loop
        return await asyncio.shield(opening)

    async def _new_pool(self) -> Any:
        return await asyncpg.create_pool(
            self._conninfo,
            min_size=0,
            max_size=self._connections,
            timeout=self._connect_timeout,
            server_settings=self._server_settings,
            reset=_keep_session,
        )

    def _abandon(self) -> None:
        """Drop the pool of another event loop (one that ended, in tests): its connections are
        closed without the loop they belong to."""
        opening, self._opening, self._pool_loop = self._opening, None, None
        if opening is not None and opening.done() and not _failed(opening):
            try:
                opening.result().terminate()
            except Exception:  # noqa: BLE001  (its loop is gone; the sockets go with it)
                log.debug("could not terminate a pool of an ended event loop", exc_info=True)

    async def aclose(self) -> None:
        """Close the pool on its own event loop (at the app's shutdown), bounded: a server
        that does not answer gets its connections cut."""
        opening, self._opening, self._pool_loop = self._opening, None, None
        if opening is None or not opening.done() or _failed(opening):
            return
        pool = opening.result()
        try:
            await asyncio.wait_for(pool.close(), self._connect_timeout)
        except Exception:  # noqa: BLE001  (a timeout or a broken connection: cut them all)
            pool.terminate()


def _failed(opening: asyncio.Task[Any]) -> bool:
    return opening.done() and (opening.cancelled() or opening.exception() is not None)
