"""A MongoDB wire-protocol proxy in front of the real test server that can stop answering.

``hang()`` makes the server look hung without closing anything: heartbeats (``hello`` /
``isMaster``, on the monitor's connections and in each connection's handshake) still pass,
so the driver's monitor sees a healthy server, but every other command is held, never
forwarded, and so never answered. ``resume()`` forwards what was held, on the connections
that are still open: a connection the driver reused after giving up on an operation would
then read that operation's late reply. Messages are framed by the standard 16-byte header;
the driver sends no compressed messages here (no compressors configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

import bson
from bson.errors import BSONError

OP_MSG = 2013
OP_QUERY = 2004
HEARTBEATS = frozenset({"hello", "ismaster"})


def command_name(op_code: int, body: bytes) -> str:
    """The command a client message runs (lower case), or "" when it cannot tell."""
    try:
        if op_code == OP_MSG:
            # flagBits, then a kind-0 section holding the command document
            if body[4] != 0:
                return ""
            size = struct.unpack_from("<i", body, 5)[0]
            doc = bson.decode(body[5 : 5 + size])
        elif op_code == OP_QUERY:
            end = body.index(b"\x00", 4)  # flags, then the collection name as a C string
            start = end + 1 + 8  # numberToSkip, numberToReturn
            size = struct.unpack_from("<i", body, start)[0]
            doc = bson.decode(body[start : start + size])
        else:
            return ""
    except (IndexError, ValueError, struct.error, BSONError):
        return ""
    return next(iter(doc), "").lower()


@dataclass
class _Link:
    upstream: asyncio.StreamWriter
    client: asyncio.StreamWriter
    held: list[bytes] = field(default_factory=list)


class HangingMongo:
    """``await HangingMongo(host, port).start()``; the driver connects to ``uri``."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.hanging = False
        self.held_commands: list[str] = []
        self._links: list[_Link] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true&retryWrites=false"

    async def start(self) -> HangingMongo:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def hang(self) -> None:
        self.hanging = True

    def resume(self) -> None:
        """Answer again, starting with what was held on connections the driver kept open."""
        self.hanging = False
        for link in self._links:
            if link.held and not link.client.is_closing() and not link.upstream.is_closing():
                for message in link.held:
                    link.upstream.write(message)
            link.held.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in self._links:
            link.client.close()
            link.upstream.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        link = _Link(upstream=up_writer, client=client_writer)
        self._links.append(link)
        for pump in (self._to_server(client_reader, link), self._to_client(up_reader, link)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _to_server(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                header = await reader.readexactly(16)
                length, _, _, op_code = struct.unpack("<iiii", header)
                body = await reader.readexactly(length - 16)
                name = command_name(op_code, body)
                if link.held or (self.hanging and name not in HEARTBEATS):
                    self.held_commands.append(name)
                    link.held.append(header + body)
                    continue
                link.upstream.write(header + body)
        link.upstream.close()

    async def _to_client(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                link.client.write(chunk)
        link.client.close()
