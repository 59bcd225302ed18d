"""Every SQLite state file is opened, written and upgraded the same way.

- :func:`connect`: autocommit off our side (``isolation_level=None``), so
  each update is one explicit ``BEGIN IMMEDIATE`` … ``COMMIT``
  (:func:`transaction`).
- :func:`migrate`: the file's format is ``PRAGMA user_version``. A state
  file lists its migrations, version 1 first; opening a file runs, in one
  transaction, every migration above the file's version and sets the
  version to the newest. A file newer than the code is refused with a hint
  to upgrade, and left as it was. Version 0 is a new, empty file, or one
  written before the file had a version: the first migration creates or
  adopts its tables. Then the journal is WAL, so readers (``status``, the
  binhost shim) never wait for a writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ipfsbin.errors import IpfsbinError

__all__ = ["Migration", "connect", "migrate", "schema_version", "statements", "transaction"]


@dataclass(frozen=True, kw_only=True)
class Migration:
    """The step from ``version - 1`` to ``version``; ``apply`` runs inside the transaction."""

    version: int
    apply: Callable[[sqlite3.Connection], None]


def statements(*sql: str) -> Callable[[sqlite3.Connection], None]:
    """A migration step that runs ``sql``, one statement each."""

    def apply(db: sqlite3.Connection) -> None:
        for statement in sql:
            db.execute(statement)

    return apply


def connect(
    path: Path, *, timeout: float = 10.0, check_same_thread: bool = True
) -> sqlite3.Connection:
    """Open ``path`` (created when absent); transactions are issued by the caller."""
    return sqlite3.connect(
        path, timeout=timeout, isolation_level=None, check_same_thread=check_same_thread
    )


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def schema_version(db: sqlite3.Connection) -> int:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(
    db: sqlite3.Connection,
    migrations: Sequence[Migration],
    *,
    what: str,
    path: Path,
    error: type[IpfsbinError],
) -> int:
    """Bring ``db`` to the newest of ``migrations``; returns the version it was at.

    ``what`` names the file in the message (``"subscription state"``);
    ``error`` is the error family of the layer that owns it.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, … in order, got {versions}")
    newest = len(migrations)
    with transaction(db):
        found = schema_version(db)
        if found > newest:
            raise error(
                f"{what} {path} has schema version {found}; this ipfsbin knows version {newest}",
                hint="upgrade ipfsbin",
            )
        for migration in migrations[found:]:
            migration.apply(db)
        if found != newest:
            db.execute(f"PRAGMA user_version={newest}")
    db.execute("PRAGMA journal_mode=WAL")
    return found
