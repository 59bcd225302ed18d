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
- A damaged file (SQLite says it is not a database, or its image is
  malformed) is reported, wherever the damage shows (opening, a statement,
  a fetch), as one :class:`~ipfsbin.errors.DamagedStateError` naming the
  file and how to recover; nothing is repaired, moved or deleted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ipfsbin.errors import DamagedStateError, IpfsbinError

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
    path: Path,
    *,
    what: str,
    recovery: str,
    timeout: float = 10.0,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """Open ``path`` (created when absent); transactions are issued by the caller.

    ``what`` names the file in messages (``"subscription state"``);
    ``recovery`` says what to do once a damaged file is moved aside
    (``"subscribe again: …"``).
    """
    db = sqlite3.connect(
        path,
        timeout=timeout,
        isolation_level=None,
        check_same_thread=check_same_thread,
        factory=_GuardedConnection,
    )
    db._guard = _Guard(Path(path), what, recovery)
    return db


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


# --- damaged files ---------------------------------------------------------------------

_DAMAGE_CODES: Final = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB (primary codes)


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """Is ``exc`` SQLite saying the file itself is damaged (not locked, not misused)?"""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _DAMAGE_CODES
    return isinstance(exc, sqlite3.DatabaseError) and type(exc) is sqlite3.DatabaseError


class _Guard:
    """What to say when a state file turns out damaged: which file, and how to recover."""

    def __init__(self, path: Path, what: str, recovery: str) -> None:
        self.path = path
        self.what = what
        self.recovery = recovery

    @contextmanager
    def watching(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
            raise DamagedStateError(
                f"{self.what} {self.path} is damaged ({exc})",
                hint=f"move it aside (`mv {self.path} {self.path}.damaged`) and "
                f"{self.recovery}; ipfsbin repairs, moves and deletes nothing by itself",
            ) from exc


class _GuardedCursor(sqlite3.Cursor):
    _guard: _Guard

    def execute(self, sql: str, parameters: Any = (), /) -> _GuardedCursor:
        with self._guard.watching():
            super().execute(sql, parameters)
        return self

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> _GuardedCursor:
        with self._guard.watching():
            super().executemany(sql, parameters)
        return self

    def fetchone(self) -> Any:
        with self._guard.watching():
            return super().fetchone()

    def fetchmany(self, size: int | None = None) -> list[Any]:
        with self._guard.watching():
            return super().fetchmany(self.arraysize if size is None else size)

    def fetchall(self) -> list[Any]:
        with self._guard.watching():
            return super().fetchall()

    def __next__(self) -> Any:
        with self._guard.watching():
            return super().__next__()


class _GuardedConnection(sqlite3.Connection):
    """Every statement, fetch and commit turns a damaged-file error into one clear error."""

    _guard: _Guard

    def cursor(self, factory: Any = None) -> _GuardedCursor:  # type: ignore[override]
        cursor = super().cursor(_GuardedCursor)
        cursor._guard = self._guard
        return cursor

    def execute(self, sql: str, parameters: Any = (), /) -> _GuardedCursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> _GuardedCursor:
        return self.cursor().executemany(sql, parameters)

    def commit(self) -> None:
        with self._guard.watching():
            super().commit()
