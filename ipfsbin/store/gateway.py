"""Blocks from a trustless HTTP gateway, each checked against its CID before use.

Requests (the trustless gateway specification):

- ``GET {url}/ipns/{name}?format=ipns-record`` with
  ``Accept: application/vnd.ipfs.ipns-record``: the signed record
  (:class:`~ipfsbin.subscribe.sources.GatewayRecordSource`);
- ``GET {url}/ipfs/{cid}?format=raw`` with ``Accept: application/vnd.ipld.raw``:
  one block's bytes.

The gateway is not trusted with anything; fetched blocks stay in memory until
the follower keeps them in the local block file (:mod:`ipfsbin.store.sqlite`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

import httpx

from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.errors import BlockMismatchError, IpfsbinError, SubscriptionError
from ipfsbin.kubo.netlimits import GATEWAY_LIMITS, TransferLimits, limited_transport
from ipfsbin.store.sqlite import SqliteBlockStore

__all__ = ["RAW_TYPE", "GatewayBlockStore", "gateway_client", "gateway_get"]

RAW_TYPE: Final = "application/vnd.ipld.raw"
_MAX_BLOCK: Final = 2 * 1024 * 1024  # peers exchange blocks up to 2 MiB
_HINT: Final = "check the gateway URL, or follow through a local Kubo node instead"


def gateway_client(timeout: float = 30.0, limits: TransferLimits = GATEWAY_LIMITS) -> httpx.Client:
    """An HTTP client for gateway requests (no redirects to other hosts are followed).

    ``timeout`` bounds each wait for bytes; ``limits`` bound each request as a
    whole (deadline, minimum rate: a gateway that drips bytes is cut off).
    """
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=False,
        transport=limited_transport(limits),
    )


def gateway_get(
    http: httpx.Client,
    url: str,
    accept: str,
    limit: int,
    *,
    error: type[IpfsbinError] = SubscriptionError,
    hint: str = _HINT,
) -> bytes:
    """The body of a 200 answer, at most ``limit`` bytes; ``error`` (with ``hint``) otherwise."""
    try:
        with http.stream("GET", url, headers={"Accept": accept}) as answer:
            if answer.status_code != 200:
                text = answer.read()[:300].decode("utf-8", "replace").strip()
                raise error(f"gateway answered {answer.status_code} for {url}: {text}", hint=hint)
            chunks: list[bytes] = []
            size = 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise error(f"gateway sent more than {limit} bytes for {url}", hint=hint)
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise error(f"gateway request {url} failed: {exc}", hint=hint) from exc


class GatewayBlockStore:
    """Blocks from the local file, else from the gateway (verified, held until kept).

    ``fetched`` counts the blocks that came over HTTP. Nothing fetched is
    written to the local file until :class:`GatewayKeeper` keeps it, so the
    blocks of a refused head never stay. Until then they wait in memory, or
    in ``spool`` (another block file) when given: a sync killed half way then
    finds the blocks it verified there and does not fetch them again, and a
    big first sync does not hold the whole index in memory. :meth:`settle`
    empties the spool once a head's blocks are kept. With ``hold=False`` (and
    no spool) fetched blocks are not kept at all: a reader that keeps what it
    decoded, such as the binhost's catalog, would otherwise hold every block
    twice.
    """

    def __init__(
        self,
        http: httpx.Client,
        url: str,
        local: SqliteBlockStore,
        *,
        spool: SqliteBlockStore | None = None,
        hold: bool = True,
    ) -> None:
        self.http = http
        self.hold = hold
        self.url = url.rstrip("/")
        self.local = local
        self.spool = spool
        self._pending: dict[CID, bytes] = {}
        self._lock = threading.Lock()
        self.fetched = 0
        self.fetched_bytes = 0

    def get(self, cid: CID) -> bytes:
        with self._lock:
            pending = self._pending.get(cid)
        if pending is not None:
            return pending
        if self.spool is not None and self.spool.has(cid):
            return self.spool.get(cid)
        if self.local.has(cid):
            return self.local.get(cid)
        data = gateway_get(self.http, f"{self.url}/ipfs/{cid}?format=raw", RAW_TYPE, _MAX_BLOCK)
        if not cid.verify(data):
            raise BlockMismatchError(
                f"gateway {self.url} sent {len(data)} bytes for {cid} that do not hash to it"
            )
        if self.spool is not None:
            self.spool.put_many([(cid, data)])
        with self._lock:
            if self.hold and self.spool is None:
                self._pending[cid] = data
            self.fetched += 1
            self.fetched_bytes += len(data)
        return data

    def put(self, data: bytes, codec: int = DAG_CBOR) -> CID:
        return self.local.put(data, codec)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self.local.put_many(blocks)

    def has(self, cid: CID) -> bool:
        with self._lock:
            if cid in self._pending:
                return True
        if self.spool is not None and self.spool.has(cid):
            return True
        return self.local.has(cid)

    def take(self, cids: Sequence[CID]) -> Iterator[tuple[CID, bytes]]:
        """The fetched blocks among ``cids``, for writing to disk."""
        for cid in cids:
            with self._lock:
                data = self._pending.get(cid)
            if data is not None:
                yield cid, data
            elif self.spool is not None and self.spool.has(cid):
                yield cid, self.spool.get(cid)

    def settle(self) -> None:
        """The fetched blocks that mattered are kept: forget the rest."""
        with self._lock:
            self._pending.clear()
        if self.spool is not None:
            self.spool.clear()
