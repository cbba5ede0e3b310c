"""An HTTP/1.1 request the test holds open inside the server, on a raw connection.

The request goes out in two steps: first its headers with ``Expect: 100-continue`` (and the
body's first bytes, when asked), then the rest of its body when the test says. uvicorn answers
``100 Continue`` only when the application first asks for the body, so that answer is the
server's own word that it has the request and its handler is reading the body: the request is
provably in flight for as long as the test holds the rest back.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HeldRequest:
    def __init__(
        self,
        port: int,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        *,
        sent_early: int = 0,
    ) -> None:
        self.port = port
        self.method = method
        self.path = path
        self.body = body
        self.headers = headers
        self.sent_early = sent_early  # body bytes sent with the headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, seconds: float = 30) -> None:
        """Send the headers (and the body's first ``sent_early`` bytes); return once the server
        said ``100 Continue``."""
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = [
            f"{self.method} {self.path} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            f"Content-Length: {len(self.body)}",
            "Expect: 100-continue",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await self.writer.drain()
        interim = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), seconds)
        assert interim == CONTINUE, f"expected 100 Continue, got {interim!r}"
        if self.sent_early:
            self.writer.write(self.body[: self.sent_early])
            await self.writer.drain()

    async def finish(self, seconds: float = 60) -> Answer:
        """Send the rest of the body; the final answer (the connection stays open on our
        side: see :meth:`closed_by_server`)."""
        assert self.reader is not None and self.writer is not None, "open() first"
        self.writer.write(self.body[self.sent_early :])
        await self.writer.drain()
        return await asyncio.wait_for(read_answer(self.reader), seconds)

    async def closed_by_server(self, seconds: float = 10) -> bool:
        """Wait for the server to close the connection (EOF with nothing more sent); False when
        it sends more bytes instead. Raises TimeoutError past ``seconds``."""
        assert self.reader is not None, "open() first"
        return await asyncio.wait_for(self.reader.read(1), seconds) == b""

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One HTTP/1.1 answer with a Content-Length."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, value in (line.split(":", 1) for line in head[1:] if line)
    }
    body = await reader.readexactly(int(headers["content-length"]))
    return Answer(status, headers, body)
