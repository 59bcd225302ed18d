"""A block store in one SQLite file: the daemon-less follower's kept blocks.

Table ``blocks`` maps CID bytes to block bytes: simpler than a directory of
files, and adding a head's blocks is one transaction. The file is shared by
all subscriptions; which of them holds a block is counted in the subscription
state, and a block is deleted only when none does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from ipfsbin import _sqlite, paths
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.errors import BlockMismatchError, BlockNotFoundError, StoreError

__all__ = ["SqliteBlockStore", "default_block_path"]

# Version 1: the block file had no version before; its one table is adopted as it is.
_WHAT: Final = "gateway block file"
_MIGRATIONS: Final = (
    _sqlite.Migration(
        version=1,
        apply=_sqlite.statements(
            "CREATE TABLE IF NOT EXISTS blocks (cid BLOB PRIMARY KEY, data BLOB NOT NULL)"
        ),
    ),
)


def default_block_path() -> Path:
    """``<data dir>/gateway-blocks.sqlite``."""
    return paths.data_dir() / "gateway-blocks.sqlite"


class SqliteBlockStore:
    """A :class:`~ipfsbin.store.base.BlockStore` in one SQLite file; verifies on read."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = default_block_path() if path is None else Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # one connection shared by the fetch threads, serialized by the lock
        self._db = _sqlite.connect(
            self.path,
            what=_WHAT,
            recovery="sync again: the blocks are fetched anew",
            check_same_thread=False,
        )
        with self._lock:
            try:
                _sqlite.migrate(self._db, _MIGRATIONS, what=_WHAT, path=self.path, error=StoreError)
            except BaseException:
                self._db.close()
                raise

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
            with _sqlite.transaction(self._db):
                self._db.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?)", rows)

    def has(self, cid: CID) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM blocks WHERE cid = ?", (cid.bytes,)).fetchone()
        return row is not None

    def delete(self, cids: Sequence[CID]) -> None:
        with self._lock:
            with _sqlite.transaction(self._db):
                self._db.executemany("DELETE FROM blocks WHERE cid = ?", [(c.bytes,) for c in cids])

    def clear(self) -> None:
        """Delete every block."""
        with self._lock:
            with _sqlite.transaction(self._db):
                self._db.execute("DELETE FROM blocks")

    def __len__(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT count(*) FROM blocks").fetchone()[0]
        return count
