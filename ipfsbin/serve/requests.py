"""The shim's request log: when each binpkg was last asked for, and how often.

``ipfsbin gc --keep-size`` drops the least recently requested packages first,
so the shim notes every binpkg GET. The hot path only updates a dict under
a lock (:meth:`RequestLog.note`); a background thread writes the counts to
``<data dir>/requests.sqlite`` every few seconds in one transaction
(:meth:`RequestLog.run`), and once more when the shim stops. A crash loses
at most the last interval's counts, which only makes a package look a little
less used.

Table ``requests``: ``binpkg`` (the binpkg's CID, primary key), ``cpv``,
``last`` (Unix time of the latest request), ``count``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ipfsbin import _sqlite, paths
from ipfsbin.codec.cid import CID
from ipfsbin.errors import ServeError

__all__ = ["RequestLog", "Requested", "default_request_log_path", "read_requests"]

_WHAT: Final = "request log"
_RECOVERY: Final = "the shim starts a new log (only gc's ordering by last request is lost)"
_MIGRATIONS: Final = (
    _sqlite.Migration(
        version=1,
        apply=_sqlite.statements(
            "CREATE TABLE IF NOT EXISTS requests (binpkg TEXT PRIMARY KEY, cpv TEXT NOT NULL, "
            "last REAL NOT NULL, count INTEGER NOT NULL)"
        ),
    ),
)


def default_request_log_path() -> Path:
    """``<data dir>/requests.sqlite``."""
    return paths.data_dir() / "requests.sqlite"


@dataclass(frozen=True, kw_only=True)
class Requested:
    """One binpkg's requests: its CPV, the latest request's time, how many there were."""

    cpv: str
    last: float
    count: int


class RequestLog:
    """Counts binpkg requests in memory and writes them out in batches."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = default_request_log_path() if path is None else path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _sqlite.connect(
            self.path, what=_WHAT, recovery=_RECOVERY, check_same_thread=False
        )
        _sqlite.migrate(self._db, _MIGRATIONS, what=_WHAT, path=self.path, error=ServeError)
        self._lock = threading.Lock()
        self._pending: dict[str, Requested] = {}

    def note(self, binpkg: CID, cpv: str, *, at: float | None = None) -> None:
        """One request of ``binpkg`` (cheap: memory only)."""
        moment = time.time() if at is None else at
        key = str(binpkg)
        with self._lock:
            seen = self._pending.get(key)
            count = 1 if seen is None else seen.count + 1
            self._pending[key] = Requested(cpv=cpv, last=moment, count=count)

    def flush(self) -> int:
        """Write what was noted since the last flush; returns how many binpkgs."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        with _sqlite.transaction(self._db):
            self._db.executemany(
                "INSERT INTO requests (binpkg, cpv, last, count) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (binpkg) DO UPDATE SET cpv = excluded.cpv, "
                "last = MAX(last, excluded.last), count = count + excluded.count",
                [(k, r.cpv, r.last, r.count) for k, r in pending.items()],
            )
        return len(pending)

    def run(self, stop: threading.Event, *, interval: float = 5.0) -> None:
        """Flush every ``interval`` seconds until ``stop`` is set, then once more."""
        while not stop.wait(interval):
            self.flush()
        self.flush()

    def read(self) -> dict[CID, Requested]:
        """Binpkg CID -> its requests, as written so far (not what is still in memory)."""
        rows = self._db.execute("SELECT binpkg, cpv, last, count FROM requests").fetchall()
        return {
            CID.from_text(binpkg): Requested(cpv=cpv, last=float(last), count=int(count))
            for binpkg, cpv, last, count in rows
        }

    def close(self) -> None:
        self.flush()
        self._db.close()


def read_requests(path: Path | None = None) -> dict[CID, Requested]:
    """Binpkg CID -> its requests, as written so far (empty when the shim never logged)."""
    where = default_request_log_path() if path is None else path
    if not where.exists():
        return {}
    log = RequestLog(where)
    try:
        return log.read()
    finally:
        log.close()
