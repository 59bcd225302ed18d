"""The share queue: every binpkg found in PKGDIR, and how far sharing it has come.

One SQLite file (``share.sqlite`` in the data directory, opened through
:mod:`ipfsbin._sqlite`), one row per build: a binpkg path together with the
size and modification time it had when found, so a file rebuilt in place is
a new build while the same file seen again is not. Its ``state``:

- ``queued``: found, not yet looked at;
- ``skipped``: a sharing filter refused it; ``reason`` names the filter and
  ``detail`` says why (``ipfsbin share --status`` lists both);
- ``failed``: it could not be read or published (bad binpkg, file changed);
  ``detail`` holds the one-line error;
- ``publishing``: its blocks are being stored and its batch's root pinned;
  the row already names its attestation and the batch root (``batch``), so
  a run killed here leaves no pin nobody accounts for: the next run
  publishes it again (every object is deterministic, so the same CIDs) or,
  when the file is gone or changed, releases that pin;
- ``published``: stored and pinned; ``attestation``/``manifest``/``binpkg``
  name it, ``batch`` the pin that keeps it;
- ``announced``: appended to the builder's feed.

Rows only move forward (queued → publishing → published → announced, or to
skipped/failed), each move one transaction, so a row in ``published`` or
later is never published again. The one way back: a build skipped by a
filter the user has switched off since is queued again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from ipfsbin import _sqlite, paths
from ipfsbin.codec.cid import CID
from ipfsbin.errors import BinpkgError

__all__ = [
    "STATES",
    "QueueItem",
    "QueueState",
    "ShareQueue",
    "default_queue_path",
]

QueueState = Literal["queued", "skipped", "failed", "publishing", "published", "announced"]
STATES: Final[tuple[QueueState, ...]] = (
    "queued",
    "skipped",
    "failed",
    "publishing",
    "published",
    "announced",
)
_WHAT: Final = "share queue"
_MIGRATIONS: Final = (
    _sqlite.Migration(
        version=1,
        apply=_sqlite.statements(
            "CREATE TABLE IF NOT EXISTS builds ("
            " id INTEGER PRIMARY KEY,"
            " path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
            " cpv TEXT, state TEXT NOT NULL, reason TEXT, detail TEXT,"
            " binpkg TEXT, manifest TEXT, attestation TEXT,"
            " found REAL NOT NULL, changed REAL NOT NULL,"
            " UNIQUE (path, size, mtime_ns))",
            "CREATE INDEX IF NOT EXISTS builds_state ON builds (state, id)",
        ),
    ),
    # The batch root pinned for a row (schema/share.md §4); rows of version 1 have their
    # attestation pinned instead.
    _sqlite.Migration(
        version=2, apply=_sqlite.statements("ALTER TABLE builds ADD COLUMN batch TEXT")
    ),
)


def default_queue_path() -> Path:
    """``<data dir>/share.sqlite``."""
    return paths.data_dir() / "share.sqlite"


@dataclass(frozen=True, kw_only=True)
class QueueItem:
    id: int
    path: Path
    size: int
    mtime_ns: int
    state: QueueState
    cpv: str | None = None
    reason: str | None = None
    detail: str | None = None
    attestation: CID | None = None
    manifest: CID | None = None
    binpkg: CID | None = None
    batch: CID | None = None
    """The batch root pinned (or about to be) for it; None: its attestation is pinned."""

    def to_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "cpv": self.cpv,
            "state": self.state,
            "reason": self.reason,
            "detail": self.detail,
            "attestation": None if self.attestation is None else str(self.attestation),
            "manifest": None if self.manifest is None else str(self.manifest),
            "binpkg": None if self.binpkg is None else str(self.binpkg),
            "batch": None if self.batch is None else str(self.batch),
        }


_COLUMNS: Final = (
    "id, path, size, mtime_ns, state, cpv, reason, detail, attestation, manifest, binpkg, batch"
)


def _cid(text: str | None) -> CID | None:
    return None if text is None else CID.from_text(text)


def _item(row: tuple[object, ...]) -> QueueItem:
    ident, path, size, mtime, state, cpv, reason, detail, att, man, binpkg, batch = row
    return QueueItem(
        id=int(str(ident)),
        path=Path(str(path)),
        size=int(str(size)),
        mtime_ns=int(str(mtime)),
        state=str(state),  # type: ignore[arg-type]
        cpv=None if cpv is None else str(cpv),
        reason=None if reason is None else str(reason),
        detail=None if detail is None else str(detail),
        attestation=_cid(None if att is None else str(att)),
        manifest=_cid(None if man is None else str(man)),
        binpkg=_cid(None if binpkg is None else str(binpkg)),
        batch=_cid(None if batch is None else str(batch)),
    )


class ShareQueue:
    """The share queue in one SQLite file; each method is one transaction."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = default_queue_path() if path is None else Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _sqlite.connect(
            self.path,
            what=_WHAT,
            recovery="run `ipfsbin share` to queue PKGDIR again "
            "(what was published is published again under the same CIDs)",
            timeout=30.0,
        )
        _sqlite.migrate(self._db, _MIGRATIONS, what=_WHAT, path=self.path, error=BinpkgError)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ShareQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with _sqlite.transaction(self._db) as db:
            yield db

    # -- adding -------------------------------------------------------------------

    def enqueue(self, found: Iterable[tuple[Path, int, int]]) -> int:
        """Queue each (path, size, mtime_ns) not seen before; returns how many were new."""
        now = time.time()
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                "INSERT INTO builds (path, size, mtime_ns, state, found, changed) "
                "VALUES (?, ?, ?, 'queued', ?, ?) ON CONFLICT DO NOTHING",
                [(str(p), size, mtime, now, now) for p, size, mtime in found],
            )
            return int(db.total_changes - before)

    def requeue_skipped(self, filters: Sequence[str]) -> int:
        """Queue again the builds skipped by ``filters`` (switched off since); returns how many."""
        if not filters:
            return 0
        marks = ",".join("?" * len(filters))
        with self._write() as db:
            where = f"WHERE state = 'skipped' AND reason IN ({marks})"
            sql = "UPDATE builds SET state = 'queued', reason = NULL, detail = NULL, changed = ? "
            sql += where
            cursor = db.execute(sql, [time.time(), *filters])
            return int(cursor.rowcount)

    # -- reading ------------------------------------------------------------------

    def items(
        self, states: Sequence[QueueState], *, limit: int | None = None, after: int = 0
    ) -> list[QueueItem]:
        """Rows in ``states``, oldest first; only those queued after row ``after``."""
        marks = ",".join("?" * len(states))
        sql = f"SELECT {_COLUMNS} FROM builds WHERE state IN ({marks}) AND id > ? ORDER BY id"  # noqa: S608
        params: list[object] = [*states, after]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_item(row) for row in self._db.execute(sql, params).fetchall()]

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = dict.fromkeys(STATES, 0)
        for state, count in self._db.execute("SELECT state, count(*) FROM builds GROUP BY state"):
            found[str(state)] = int(count)
        return found

    def skip_reasons(self) -> dict[str, int]:
        """Filter name -> how many builds it skipped."""
        return {
            str(reason): int(count)
            for reason, count in self._db.execute(
                "SELECT reason, count(*) FROM builds WHERE state = 'skipped' GROUP BY reason"
            )
        }

    # -- moving forward ----------------------------------------------------------------

    def _set(self, item: QueueItem, state: QueueState, **columns: str | None) -> None:
        names = ["state = ?", "changed = ?", *(f"{name} = ?" for name in columns)]
        with self._write() as db:
            db.execute(
                f"UPDATE builds SET {', '.join(names)} WHERE id = ?",  # noqa: S608
                [state, time.time(), *columns.values(), item.id],
            )

    def skip(self, item: QueueItem, cpv: str | None, reason: str, detail: str) -> None:
        self._set(item, "skipped", cpv=cpv, reason=reason, detail=detail, batch=None)

    def fail(self, item: QueueItem, cpv: str | None, detail: str) -> None:
        self._set(item, "failed", cpv=cpv, reason="error", detail=detail, batch=None)

    def begin_publishing(
        self, planned: Sequence[tuple[QueueItem, str, CID]], *, batch: CID | None = None
    ) -> None:
        """(item, cpv, attestation) of every package about to be pinned, and the batch root
        that will be pinned for them all, in one transaction."""
        now = time.time()
        root = None if batch is None else str(batch)
        with self._write() as db:
            db.executemany(
                "UPDATE builds SET state = 'publishing', cpv = ?, attestation = ?, batch = ?, "
                "changed = ? WHERE id = ? AND state IN ('queued', 'publishing')",
                [(cpv, str(att), root, now, item.id) for item, cpv, att in planned],
            )

    def finish_publishing(self, done: Sequence[tuple[QueueItem, CID, CID]]) -> None:
        """(item, manifest, binpkg) of every package now pinned, in one transaction."""
        now = time.time()
        with self._write() as db:
            db.executemany(
                "UPDATE builds SET state = 'published', manifest = ?, binpkg = ?, "
                "reason = NULL, detail = NULL, changed = ? WHERE id = ? AND state = 'publishing'",
                [(str(man), str(binpkg), now, item.id) for item, man, binpkg in done],
            )

    def abandon(self, item: QueueItem, detail: str) -> None:
        """A ``publishing`` row whose file is gone or changed (its pin released): failed."""
        self._set(item, "failed", reason="error", detail=detail, attestation=None, batch=None)

    def announced(self, items: Sequence[QueueItem]) -> None:
        now = time.time()
        with self._write() as db:
            db.executemany(
                "UPDATE builds SET state = 'announced', changed = ? "
                "WHERE id = ? AND state = 'published'",
                [(now, item.id) for item in items],
            )
