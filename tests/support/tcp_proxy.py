"""A TCP forwarder on a free loopback port that a test can cut and restore.

Pointing a server at this proxy instead of at PostgreSQL lets a test take "the database"
away and bring it back without touching the PostgreSQL server that other tests share.
Modes: ``up`` forwards; ``down`` resets every open connection and refuses new ones, as when
the database stops or restarts; ``blackhole`` resets open connections and accepts new ones
without ever answering, as when packets to the database host are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "up"
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._flowing = asyncio.Event()  # cleared while "frozen": bytes are held, not relayed

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def set_mode(self, mode: str) -> None:
        """Switch mode; open connections are reset unless the new mode is ``up`` or
        ``frozen`` (connections stay open and acknowledged, and nothing is relayed either way
        until the mode is ``up`` again: a database stopped with SIGSTOP, as a client sees it)."""
        done = threading.Event()

        def switch() -> None:
            self.mode = mode
            if mode == "frozen":
                self._flowing.clear()
            else:
                self._flowing.set()
            if mode not in ("up", "frozen"):
                for writer in list(self._writers):
                    writer.transport.abort()
                self._writers.clear()
            done.set()

        self._loop.call_soon_threadsafe(switch)
        done.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._flowing.set()
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        # Stopped: close everything inside the loop, so no socket is left for the GC.
        for writer in list(self._writers):
            writer.transport.abort()
        server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "down":
            writer.transport.abort()
            return
        self._writers.add(writer)
        if self.mode == "blackhole":
            try:
                with contextlib.suppress(Exception):
                    await reader.read()  # hold the connection, answer nothing
            finally:
                self._writers.discard(writer)
                writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer),
                self._pipe(up_reader, writer),
                return_exceptions=True,
            )
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            await self._flowing.wait()
            if not data or self.mode != "up":
                writer.transport.abort()
                return
            writer.write(data)
            await writer.drain()


@contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
