"""Following without a daemon: records and blocks from a trustless HTTP gateway.

The gateway is not trusted with anything: the IPNS record is verified under
the name, every block is checked against its CID before use, and the commit
goes through the same :class:`~ipfsbin.trust.state.TrustedChain` as with Kubo.
Requests (the trustless gateway specification):

- ``GET {url}/ipns/{name}?format=ipns-record`` with
  ``Accept: application/vnd.ipfs.ipns-record``: the signed record;
- ``GET {url}/ipfs/{cid}?format=raw`` with ``Accept: application/vnd.ipld.raw``:
  one block's bytes.

Kept blocks live in one SQLite file (table ``blocks``, CID bytes to block
bytes): simpler than a directory of files, and adding a head's blocks is one
transaction. The file is shared by all subscriptions; which of them holds a
block is counted in the subscription state, and a block is deleted only when
none does.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import httpx

from ipfsbin import paths
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.errors import BlockMismatchError, BlockNotFoundError, SubscriptionError
from ipfsbin.ipns.name import canonical_name
from ipfsbin.ipns.record import MAX_RECORD_SIZE
from ipfsbin.kubo.netlimits import GATEWAY_LIMITS, TransferLimits, limited_transport

__all__ = [
    "BlockFileKeeper",
    "GatewayBlockStore",
    "GatewayKeeper",
    "GatewayRecordSource",
    "SqliteBlockStore",
    "default_block_path",
    "gateway_client",
]

_RECORD_TYPE: Final = "application/vnd.ipfs.ipns-record"
_RAW_TYPE: Final = "application/vnd.ipld.raw"
_MAX_BLOCK: Final = 2 * 1024 * 1024  # peers exchange blocks up to 2 MiB
_HINT: Final = "check the gateway URL, or follow through a local Kubo node instead"


def default_block_path() -> Path:
    """``<data dir>/gateway-blocks.sqlite``."""
    return paths.data_dir() / "gateway-blocks.sqlite"


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


def _get(http: httpx.Client, url: str, accept: str, limit: int) -> bytes:
    """The body of a 200 answer, at most ``limit`` bytes; ``SubscriptionError`` otherwise."""
    try:
        with http.stream("GET", url, headers={"Accept": accept}) as answer:
            if answer.status_code != 200:
                text = answer.read()[:300].decode("utf-8", "replace").strip()
                raise SubscriptionError(
                    f"gateway answered {answer.status_code} for {url}: {text}", hint=_HINT
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise SubscriptionError(
                        f"gateway sent more than {limit} bytes for {url}", hint=_HINT
                    )
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise SubscriptionError(f"gateway request {url} failed: {exc}", hint=_HINT) from exc


class GatewayRecordSource:
    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http = http
        self.url = url.rstrip("/")

    def fetch_record(self, name: str) -> bytes:
        target = f"{self.url}/ipns/{canonical_name(name)}?format=ipns-record"
        return _get(self.http, target, _RECORD_TYPE, MAX_RECORD_SIZE)


class SqliteBlockStore:
    """A :class:`~ipfsbin.store.base.BlockStore` in one SQLite file; verifies on read."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = default_block_path() if path is None else Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # one connection shared by the fetch threads, serialized by the lock
        self._db = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS blocks (cid BLOB PRIMARY KEY, data BLOB NOT NULL)"
            )

    def close(self) -> None:
        self._db.close()

    def get(self, cid: CID) -> bytes:
        with self._lock:
            row = self._db.execute("SELECT data FROM blocks WHERE cid = ?", (cid.bytes,)).fetchone()
        if row is None:
            raise BlockNotFoundError(f"block {cid} is not in {self.path}")
        data: bytes = row[0]
        if not cid.verify(data):
            raise BlockMismatchError(f"block {cid} in {self.path} does not hash to its CID")
        return data

    def put(self, data: bytes, codec: int = DAG_CBOR) -> CID:
        cid = cid_for(codec, data)
        self.put_many([(cid, data)])
        return cid

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        rows = []
        for cid, data in blocks:
            if not cid.verify(data):
                raise BlockMismatchError(f"block bytes do not hash to {cid}")
            rows.append((cid.bytes, data))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def has(self, cid: CID) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM blocks WHERE cid = ?", (cid.bytes,)).fetchone()
        return row is not None

    def delete(self, cids: Sequence[CID]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM blocks WHERE cid = ?", [(c.bytes,) for c in cids])
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT count(*) FROM blocks").fetchone()[0]
        return count


class GatewayBlockStore:
    """Blocks from the local file, else from the gateway (verified, held until kept).

    ``fetched`` counts the blocks that came over HTTP. Nothing fetched is
    written to disk until :class:`GatewayKeeper` keeps it, so the blocks of a
    refused head never stay.
    """

    def __init__(self, http: httpx.Client, url: str, local: SqliteBlockStore) -> None:
        self.http = http
        self.url = url.rstrip("/")
        self.local = local
        self._pending: dict[CID, bytes] = {}
        self._lock = threading.Lock()
        self.fetched = 0
        self.fetched_bytes = 0

    def get(self, cid: CID) -> bytes:
        with self._lock:
            pending = self._pending.get(cid)
        if pending is not None:
            return pending
        if self.local.has(cid):
            return self.local.get(cid)
        data = _get(self.http, f"{self.url}/ipfs/{cid}?format=raw", _RAW_TYPE, _MAX_BLOCK)
        if not cid.verify(data):
            raise BlockMismatchError(
                f"gateway {self.url} sent {len(data)} bytes for {cid} that do not hash to it"
            )
        with self._lock:
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
        return self.local.has(cid)

    def take(self, cids: Sequence[CID]) -> list[tuple[CID, bytes]]:
        """The fetched blocks among ``cids``, for writing to disk."""
        with self._lock:
            return [(c, self._pending[c]) for c in cids if c in self._pending]


class GatewayKeeper:
    """Keeping is writing the fetched blocks to the local file; releasing is deleting them."""

    def __init__(self, blocks: GatewayBlockStore) -> None:
        self.blocks = blocks

    def keep(self, cids: Sequence[CID], *, label: str) -> None:
        fresh = self.blocks.take(cids)
        self.blocks.local.put_many(fresh)
        missing = [c for c in cids if not self.blocks.local.has(c)]
        if missing:
            raise BlockNotFoundError(
                f"{len(missing)} blocks to keep for {label} were never fetched "
                f"(first: {missing[0]})"
            )

    def release(self, cids: Sequence[CID], *, label: str) -> None:
        self.blocks.local.delete(cids)


class BlockFileKeeper:
    """Releasing from the local block file without a gateway (``ipfsbin unsubscribe``).

    It keeps nothing new: ``keep`` only checks the blocks are in the file.
    """

    def __init__(self, local: SqliteBlockStore) -> None:
        self.local = local

    def keep(self, cids: Sequence[CID], *, label: str) -> None:
        missing = [c for c in cids if not self.local.has(c)]
        if missing:
            raise BlockNotFoundError(
                f"{len(missing)} blocks to keep for {label} are not in {self.local.path} "
                f"(first: {missing[0]})"
            )

    def release(self, cids: Sequence[CID], *, label: str) -> None:
        self.local.delete(cids)
