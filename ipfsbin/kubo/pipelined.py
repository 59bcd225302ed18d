"""Reading many local blocks from Kubo over one pipelined HTTP/1.1 connection.

Kubo's RPC has no batched ``block/get``, and one request after another costs
a wakeup of both processes per block: on this project's loaded two-core
machines a few milliseconds each through ``httpx``, most of it in the
scheduler. Writing a batch of requests before reading the answers (HTTP/1.1
pipelining, which Kubo's Go server answers in order) costs about one wakeup
per batch instead. Answers are parsed by ``h11`` (the HTTP/1.1 machine under
``httpx``). Only blocks already in the repo are asked for (``offline``): a
missing one is an error, never a network fetch.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from types import TracebackType
from typing import Final
from urllib.parse import quote

import h11

from ipfsbin.codec.cid import CID
from ipfsbin.errors import BlockMismatchError, BlockNotFoundError, KuboCommandError, KuboError
from ipfsbin.kubo.client import KuboClient

__all__ = ["PipelinedBlocks", "pipelined_blocks"]

_RECEIVE: Final = 256 * 1024
_TIMEOUT: Final = 60.0
"""Seconds a local read may take before the connection is given up (the repo is on disk)."""


def pipelined_blocks(client: KuboClient) -> PipelinedBlocks | None:
    """A pipelined reader for ``client``'s API, or None when it is not plain HTTP over TCP
    (a Unix socket or TLS: the caller reads through the client instead)."""
    url = client.http.base_url
    if url.scheme != "http" or url.port is None or not url.host:
        return None
    auth = client.http.headers.get("authorization")
    return PipelinedBlocks(url.host, url.port, authorization=auth)


class PipelinedBlocks:
    """``read(cids)``: the local blocks, in order, checked against their CIDs (use as a context)."""

    def __init__(self, host: str, port: int, *, authorization: str | None = None) -> None:
        self.host = host
        self.port = port
        self._headers = [("Host", host), ("Content-Length", "0")]
        if authorization is not None:
            self._headers.append(("Authorization", authorization))
        self._sock: socket.socket | None = None
        self._http = h11.Connection(h11.CLIENT)

    def read(self, cids: Sequence[CID]) -> list[bytes]:
        if not cids:
            return []
        sock = self._connect()
        requests = [
            h11.Request(
                method="POST",
                target=f"/api/v0/block/get?arg={quote(str(cid))}&offline=true",
                headers=self._headers,
            )
            for cid in cids
        ]
        wire = bytearray()
        for request in requests:  # the bytes only; ``self._http`` tracks the answers in turn
            writer = h11.Connection(h11.CLIENT)
            wire += writer.send(request) or b""
            wire += writer.send(h11.EndOfMessage()) or b""
        try:
            sock.sendall(wire)
            return [self._answer(sock, r, c) for r, c in zip(requests, cids, strict=True)]
        except (OSError, h11.ProtocolError) as exc:
            self.close()
            raise KuboError(f"kubo block/get (pipelined): {exc}") from exc
        except BaseException:
            self.close()  # a half-read answer would be taken for the next block's
            raise

    def _answer(self, sock: socket.socket, request: h11.Request, cid: CID) -> bytes:
        self._http.send(request)
        self._http.send(h11.EndOfMessage())
        status = 0
        body: list[bytes] = []
        while True:
            event = self._http.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(_RECEIVE)
                if not data:
                    raise KuboError("kubo block/get (pipelined): the connection closed")
                self._http.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                trailer = dict(event.headers).get(b"x-stream-error")
                break
        self._http.start_next_cycle()
        data = b"".join(body)
        if status != 200 or trailer:
            message = (trailer or data[:300]).decode("utf-8", "replace")
            if status != 200 and "not found" in message:
                raise BlockNotFoundError(f"block {cid} is not in the local repo (kubo: {message})")
            raise KuboCommandError("block/get", message)
        if not cid.verify(data):
            raise BlockMismatchError(
                f"Kubo returned {len(data)} bytes for {cid} that do not hash to it"
            )
        return data

    def _connect(self) -> socket.socket:
        if self._sock is None:
            try:
                self._sock = socket.create_connection((self.host, self.port), timeout=_TIMEOUT)
            except OSError as exc:
                raise KuboError(f"kubo API at {self.host}:{self.port}: {exc}") from exc
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._http = h11.Connection(h11.CLIENT)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> PipelinedBlocks:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
