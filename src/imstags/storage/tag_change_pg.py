"""Tag writes on PostgreSQL: the ``imstags_change_tags`` function, called from the event loop
with the changes of concurrent requests batched into one statement (group commit).

The Python write path (:mod:`.tag_rows`) needs three round trips per write (lock and read,
write, commit) and about a millisecond of driver Python on a writer thread, which held tag
writes under 1,000 a second. The same work as one PL/pgSQL function (migration 0006) is one
statement, in autocommit mode: one statement is one transaction, durable once answered.

Why batches: every write of a project bumps the project's ``tag_versions`` row, and writes of
the same tags change the same ``tag_counts`` rows. A row lock is held until the commit is on
disk, so writes of one project were serialised on the WAL flush, a millisecond or so per write
on the benchmark machine, whatever the client did (the same workload with the flush made
asynchronous, as an experiment, ran three times faster). So the changes that arrive while
statements are out wait, and go together as one statement: one transaction, one flush, the
hot rows locked once. They still answer one by one as the Python path would (same statuses,
same order within a batch: a change sees the ones before it).

Locks in a batch follow one order, shared with every other writer: the images first (by id),
then counter rows by (project, key, value) in code-point order (COLLATE "C", which is what
Python's ``sorted`` gives the other writers), then the versions by project. A VOLATILE PL/pgSQL
function in READ COMMITTED takes a new snapshot for each statement, so the tags, read after the
locks were granted, include everything the previous holders committed.

The call goes out on asyncpg connections of a small pool of their own (``write_connections``;
as many senders as connections, so a batch forms while the others are out). Server-side limits
(``lock_timeout``, ``statement_timeout``) are the engine's; a deadlock or serialisation failure
is retried whole, as ``Database._retrying`` does; a lost connection is a 503 for every change of
the batch; any other refusal is split down to the change at fault. The caller
(``WriteRunner.run_on_loop``) bounds the whole wait, for a database that answers nothing; a
change cancelled before its batch is sent is left out of it.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg

from imstags.errors import ServiceUnavailable

log = logging.getLogger(__name__)

FUNCTION = "imstags_change_tags"
# Parameters: the changes, a JSON array of {"project", "image", "upserts": {key: value},
# "removals": [[key, value or null]...], "required": [key, value or null]}; the tag limit.
# One row per change, in the order given.
_CALL = "SELECT outcome, tag_count FROM imstags_change_tags($1::jsonb, $2::integer)"
# Changes sent in one statement at most: a batch holds its images' and counters' locks until it
# commits, so a very large one would make the writes of other processes wait.
MAX_BATCH = 32
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


@dataclass
class _Waiting:
    change: dict[str, Any]
    max_tags: int
    waiter: asyncio.Future[TagChangeOutcome]


def _answer(
    item: _Waiting, *, outcome: TagChangeOutcome | None = None, error: BaseException | None = None
) -> None:
    """Give a change its answer, unless nobody waits for it any more (the deadline passed)."""
    if item.waiter.done():
        return
    if error is not None:
        item.waiter.set_exception(error)
    else:
        item.waiter.set_result(outcome)  # type: ignore[arg-type]  # callers give exactly one of outcome and error


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
        self._waiting: list[_Waiting] = []  # changes not sent yet
        self._senders = 0
        self._tasks: set[asyncio.Future[Any]] = set()
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
        """Run one tag change, in a batch with the changes waiting beside it (group commit);
        a 503 when the server is out of reach. A change cancelled before its batch was sent
        (the write deadline) is left out of it."""
        change: dict[str, Any] = {"project": project_id, "image": image_id}
        if upserts:
            change["upserts"] = dict(upserts)
        if removals:
            change["removals"] = [list(pair) for pair in removals]
        if required is not None:
            change["required"] = list(required)
        waiter: asyncio.Future[TagChangeOutcome] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(change, max_tags, waiter))
        if self._senders < self._connections:
            self._senders += 1
            sender = asyncio.ensure_future(self._send_while_waiting())
            self._tasks.add(sender)  # the loop keeps only weak references to tasks
            sender.add_done_callback(self._tasks.discard)
        return await waiter

    async def _send_while_waiting(self) -> None:
        """One sender: while changes wait, send them (all of them, up to a batch) as one
        statement on a connection of its own. As many senders run as the pool has
        connections, so a batch forms while the others' statements are out."""
        try:
            while self._waiting:
                batch = self._take_batch()
                if batch:
                    await self._send(batch)
        finally:
            self._senders -= 1

    def _take_batch(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        rest: list[_Waiting] = []
        for item in self._waiting:
            if item.waiter.done():  # cancelled while waiting: dropped unrun
                continue
            if len(batch) < MAX_BATCH and (not batch or item.max_tags == batch[0].max_tags):
                batch.append(item)
            else:
                rest.append(item)
        self._waiting = rest
        return batch

    async def _send(self, batch: list[_Waiting]) -> None:
        """One batch as one statement, retried whole after a deadlock or a serialisation
        failure. Any other refusal of the database is given to every change of the batch
        when it holds one change; a larger batch is split into single changes, so that the
        change at fault gets the error alone."""
        try:
            rows = await self._call(batch)
        except _CONNECTION_LOST as exc:
            log.warning("database unavailable: %r", exc)
            for item in batch:
                _answer(item, error=ServiceUnavailable("The database is unavailable."))
            return
        except Exception as exc:  # noqa: BLE001  (the database refused the batch)
            if len(batch) == 1:
                _answer(batch[0], error=exc)
                return
            for item in batch:
                await self._send([item])
            return
        for item, row in zip(batch, rows, strict=True):
            _answer(item, outcome=TagChangeOutcome(TagChangeStatus(row[0]), int(row[1])))

    async def _call(self, batch: list[_Waiting]) -> list[Any]:
        changes = json.dumps([item.change for item in batch])
        for number in range(1, self._attempts + 1):
            try:
                pool = await self._open_pool()
                async with pool.acquire() as connection:
                    rows: list[Any] = await connection.fetch(_CALL, changes, batch[0].max_tags)
                    return rows
            except _RETRYABLE as exc:
                if number == self._attempts:
                    raise
                log.info("retrying tag change after %s (attempt %d)", exc, number)
                self.on_retry()
                await asyncio.sleep(0.005 * number)
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
