"""A maintainer's local state for one index: trust roots, head, staged changes, drafts.

Kept in SQLite under ``<data dir>/index/<name>/state.sqlite`` (format in
``schema/maintainer.md``); every update is one transaction. The signed
objects themselves (roots, commits) live in Kubo, pinned; their two small
blocks are also copied into the database so that the head, the root and the
envelopes of past commits (which the chain does not link) can be read
without a daemon.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal

from ipfsbin import _sqlite, paths
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.errors import IndexOperationError
from ipfsbin.index.entry import IndexEntry
from ipfsbin.kubo.client import KuboClient
from ipfsbin.store.base import BlockStore
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.commit import SignedCommit
from ipfsbin.trust.root import SignedRoot

__all__ = ["SCHEMA_VERSION", "StagedChange", "Workspace", "workspace_dir"]

SCHEMA_VERSION: Final = 2
"""``PRAGMA user_version`` of the state file (:mod:`ipfsbin._sqlite`)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FETCH_TIMEOUT: Final = timedelta(seconds=60)

# Format 1, as it shipped (its number kept in meta); later versions are migrations.
_FORMAT_1: Final = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE blocks (cid TEXT PRIMARY KEY, data BLOB NOT NULL)",
    """CREATE TABLE commits (
    commit_id TEXT PRIMARY KEY,
    envelope TEXT NOT NULL,
    height INTEGER NOT NULL UNIQUE
)""",
    """CREATE TABLE staged (
    key TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    entry BLOB NOT NULL,
    seq INTEGER NOT NULL
)""",
    "CREATE TABLE draft (commit_id TEXT PRIMARY KEY, envelope TEXT NOT NULL)",
    "CREATE TABLE keys (name TEXT PRIMARY KEY, key_id TEXT NOT NULL)",
)

# Version 2. IF NOT EXISTS: ipfsbin made these tables on open before files had a version.
_ROOT_TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS roots (
    version INTEGER PRIMARY KEY,
    root_id TEXT NOT NULL UNIQUE,
    envelope TEXT NOT NULL
)""",
    "CREATE TABLE IF NOT EXISTS root_draft (root_id TEXT PRIMARY KEY, envelope TEXT NOT NULL)",
)

Action = Literal["add", "merge", "yank"]


def _connect(path: Path) -> sqlite3.Connection:
    return _sqlite.connect(
        path,
        what="index state",
        recovery="restore it from a backup (the index's commits and roots are also in Kubo, "
        "pinned)",
    )


def workspace_dir(name: str) -> Path:
    """Where the workspace ``name`` keeps its state."""
    if not _NAME.match(name):
        raise IndexOperationError(
            f"invalid index name {name!r}",
            hint="use letters, digits, '.', '_' or '-' (at most 64 characters)",
        )
    return paths.data_dir() / "index" / name


@dataclass(frozen=True, kw_only=True)
class StagedChange:
    """An entry as it will be after the next commit, and what produced it."""

    key: str
    action: Action
    entry: IndexEntry

    def __post_init__(self) -> None:
        if self.action not in ("add", "merge", "yank"):
            raise ValueError(f"action must be add, merge or yank, got {self.action!r}")
        if not isinstance(self.entry, IndexEntry):
            raise TypeError(f"entry must be an IndexEntry, not {type(self.entry).__name__}")


class Workspace:
    """One index as its maintainer sees it. Open with :meth:`open`, make with :meth:`create`."""

    def __init__(self, name: str, directory: Path, db: sqlite3.Connection) -> None:
        self.name = name
        self.directory = directory
        self._db = db

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, name: str = "default") -> Workspace:
        """The workspace ``name``; ``IndexOperationError`` (hint: ``index init``) if absent."""
        directory = workspace_dir(name)
        path = directory / "state.sqlite"
        if not path.is_file():
            hint = "create it with `ipfsbin index init --key NAME`"
            if name != "default":
                hint = f"create it with `ipfsbin index init --index {name} --key NAME`"
            raise IndexOperationError(f"no index named {name!r} in {directory.parent}", hint=hint)
        db = _connect(path)
        workspace = cls(name, directory, db)
        try:
            workspace._migrate(path)
        except BaseException:
            db.close()
            raise
        return workspace

    def _migrate(self, path: Path) -> None:
        migrations = (
            _sqlite.Migration(version=1, apply=lambda db: self._check_format(path)),
            _sqlite.Migration(version=2, apply=lambda db: self._add_root_tables()),
        )
        _sqlite.migrate(
            self._db, migrations, what="index state", path=path, error=IndexOperationError
        )

    def _check_format(self, path: Path) -> None:
        """Version 1 is the format that kept its number in ``meta`` (``schema`` = 1)."""
        version = self._meta("schema")
        if version != "1":
            raise IndexOperationError(
                f"index state {path} has format version {version}, expected 1",
                hint="a newer ipfsbin wrote it; upgrade to use it",
            )

    def _add_root_tables(self) -> None:
        """Version 2 lists every adopted root; the one root kept until then is the first row."""
        for statement in _ROOT_TABLES:
            self._db.execute(statement)
        (count,) = self._db.execute("SELECT COUNT(*) FROM roots").fetchone()
        if count == 0:
            current = self.signed_root
            self._db.execute(
                "INSERT INTO roots VALUES (?, ?, ?)",
                (current.version, str(current.root_id), str(current.cid)),
            )

    @classmethod
    def create(
        cls,
        name: str,
        *,
        root: SignedRoot,
        key_names: Sequence[tuple[str, str]],
        publisher_key_name: str | None,
    ) -> Workspace:
        """A new workspace under ``root``; ``key_names`` are (local key name, key ID) pairs."""
        directory = workspace_dir(name)
        path = directory / "state.sqlite"
        if path.exists():
            raise IndexOperationError(
                f"an index named {name!r} already exists in {directory}",
                hint="choose another name with --index",
            )
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = _connect(path)
        workspace = cls(name, directory, db)
        try:
            with workspace._transaction() as cur:
                for statement in _FORMAT_1:
                    cur.execute(statement)
                cur.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("schema", "1"),
                        ("root", str(root.cid)),
                        ("head", None),
                        ("publisher_key_name", publisher_key_name),
                    ],
                )
                cur.executemany("INSERT INTO keys VALUES (?, ?)", list(key_names))
                _put_blocks(cur, root.blocks())
            workspace._migrate(path)
        except BaseException:
            db.close()
            path.unlink(missing_ok=True)
            raise
        return workspace

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with _sqlite.transaction(self._db), closing(self._db.cursor()) as cur:
            yield cur

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def _block(self, cid: CID) -> bytes:
        row = self._db.execute("SELECT data FROM blocks WHERE cid = ?", (str(cid),)).fetchone()
        if row is None:
            raise IndexOperationError(f"index state lacks block {cid}; the state file is damaged")
        data: bytes = row[0]
        return data

    def _signed_commit(self, envelope: CID) -> SignedCommit:
        envelope_block = self._block(envelope)
        value = dagcbor.decode_block(envelope, envelope_block)
        if not isinstance(value, dict) or not isinstance(value.get("signed"), CID):
            raise IndexOperationError(f"index state block {envelope} is not a signed envelope")
        return SignedCommit.from_blocks(envelope_block, self._block(value["signed"]), cid=envelope)

    # -- the contract other commands rely on --------------------------------------------

    @property
    def head(self) -> CID | None:
        """Envelope CID of the newest commit accepted here (what IPNS should point to)."""
        text = self._meta("head")
        return None if text is None else CID.from_text(text)

    @property
    def head_commit(self) -> SignedCommit | None:
        head = self.head
        return None if head is None else self._signed_commit(head)

    @property
    def root(self) -> CID:
        """Envelope CID of the current trust root."""
        text = self._meta("root")
        if text is None:
            raise IndexOperationError("index state has no trust root; the state file is damaged")
        return CID.from_text(text)

    @property
    def signed_root(self) -> SignedRoot:
        return self._signed_root(self.root)

    def _signed_root(self, envelope: CID) -> SignedRoot:
        block = self._block(envelope)
        value = dagcbor.decode_block(envelope, block)
        if not isinstance(value, dict) or not isinstance(value.get("signed"), CID):
            raise IndexOperationError(f"index state block {envelope} is not a signed envelope")
        return SignedRoot.from_blocks(block, self._block(value["signed"]), cid=envelope)

    def root_envelopes(self) -> tuple[CID, ...]:
        """Envelope CIDs of every adopted trust root, version 1 (or the oldest kept) first."""
        rows = self._db.execute("SELECT envelope FROM roots ORDER BY version").fetchall()
        return tuple(CID.from_text(e) for (e,) in rows)

    def root_chain(self) -> tuple[SignedRoot, ...]:
        """Every adopted trust root, oldest first; the last is :attr:`signed_root`."""
        return tuple(self._signed_root(e) for e in self.root_envelopes())

    @property
    def draft_root(self) -> SignedRoot | None:
        """The next trust root version waiting for co-signatures, if any."""
        row = self._db.execute("SELECT envelope FROM root_draft").fetchone()
        return None if row is None else self._signed_root(CID.from_text(row[0]))

    def record_root(
        self,
        signed: SignedRoot,
        *,
        as_current: bool,
        key_names: Sequence[tuple[str, str]] = (),
        publisher_key_name: str | None = None,
    ) -> None:
        """Keep ``signed`` as the root draft, or adopt it as the current root (drops the draft).

        On adoption ``key_names`` are local keys to remember as well, and
        ``publisher_key_name`` replaces the publisher key setting. The caller
        has verified ``signed`` as the next version after the current root.
        """
        with self._transaction() as cur:
            _put_blocks(cur, signed.blocks())
            cur.execute("DELETE FROM root_draft")
            if not as_current:
                cur.execute(
                    "INSERT INTO root_draft VALUES (?, ?)", (str(signed.root_id), str(signed.cid))
                )
                return
            cur.execute(
                "INSERT INTO roots VALUES (?, ?, ?)",
                (signed.version, str(signed.root_id), str(signed.cid)),
            )
            cur.execute("UPDATE meta SET value = ? WHERE name = 'root'", (str(signed.cid),))
            cur.execute(
                "UPDATE meta SET value = ? WHERE name = 'publisher_key_name'",
                (publisher_key_name,),
            )
            cur.executemany("INSERT OR REPLACE INTO keys VALUES (?, ?)", list(key_names))

    def drop_draft_root(self) -> SignedRoot | None:
        draft = self.draft_root
        with self._transaction() as cur:
            cur.execute("DELETE FROM root_draft")
        return draft

    @property
    def publisher_key_name(self) -> str | None:
        """The local key that signs IPNS records for this index, if one is in the root."""
        return self._meta("publisher_key_name")

    @property
    def key_names(self) -> tuple[tuple[str, str], ...]:
        """Local maintainer keys as (name, key ID)."""
        rows = self._db.execute("SELECT name, key_id FROM keys ORDER BY name").fetchall()
        return tuple((str(n), str(k)) for n, k in rows)

    def store(self, client: KuboClient) -> BlockStore:
        """The block store this index lives in: Kubo, asking the network for missing blocks."""
        return KuboBlockStore(client, offline=False, fetch_timeout=_FETCH_TIMEOUT)

    # -- staged changes -----------------------------------------------------------------

    def staged(self) -> list[StagedChange]:
        rows = self._db.execute("SELECT key, action, entry FROM staged ORDER BY seq").fetchall()
        return [
            StagedChange(key=key, action=action, entry=IndexEntry.from_dag(dagcbor.decode(entry)))
            for key, action, entry in rows
        ]

    def staged_entry(self, key: str) -> IndexEntry | None:
        row = self._db.execute("SELECT entry FROM staged WHERE key = ?", (key,)).fetchone()
        return None if row is None else IndexEntry.from_dag(dagcbor.decode(row[0]))

    def stage(self, changes: Sequence[StagedChange]) -> None:
        """Stage ``changes`` (replacing what was staged for the same keys), all or nothing."""
        with self._transaction() as cur:
            (seq,) = cur.execute("SELECT COALESCE(MAX(seq), 0) FROM staged").fetchone()
            for offset, change in enumerate(changes, start=1):
                cur.execute(
                    "INSERT OR REPLACE INTO staged VALUES (?, ?, ?, ?)",
                    (
                        change.key,
                        change.action,
                        dagcbor.encode(change.entry.to_dag()),
                        seq + offset,
                    ),
                )

    def unstage(self, keys: Sequence[str] | None = None) -> int:
        """Drop staged changes (all, or those for ``keys``); how many were dropped."""
        with self._transaction() as cur:
            if keys is None:
                return cur.execute("DELETE FROM staged").rowcount
            return sum(
                cur.execute("DELETE FROM staged WHERE key = ?", (key,)).rowcount for key in keys
            )

    # -- commits ------------------------------------------------------------------------

    @property
    def draft(self) -> SignedCommit | None:
        """The commit waiting for co-signatures, if any."""
        row = self._db.execute("SELECT envelope FROM draft").fetchone()
        return None if row is None else self._signed_commit(CID.from_text(row[0]))

    def record_commit(self, signed: SignedCommit, *, as_head: bool) -> None:
        """Store a newly made commit: the head (threshold met) or the draft; clears staging.

        The caller has verified ``signed`` (and, for a head, that it descends
        from the current head).
        """
        with self._transaction() as cur:
            _put_blocks(cur, signed.blocks())
            cur.execute("DELETE FROM staged")
            cur.execute("DELETE FROM draft")
            if as_head:
                _advance(cur, signed)
            else:
                cur.execute(
                    "INSERT INTO draft VALUES (?, ?)", (str(signed.commit_id), str(signed.cid))
                )

    def update_draft(self, signed: SignedCommit, *, as_head: bool) -> None:
        """Replace the draft by ``signed`` (more signatures); make it the head when ``as_head``."""
        with self._transaction() as cur:
            _put_blocks(cur, signed.blocks())
            cur.execute("DELETE FROM draft")
            if as_head:
                _advance(cur, signed)
            else:
                cur.execute(
                    "INSERT INTO draft VALUES (?, ?)", (str(signed.commit_id), str(signed.cid))
                )

    def update_head_signatures(self, signed: SignedCommit) -> None:
        """The head (or an older accepted commit) with more signatures: keep the new envelope."""
        with self._transaction() as cur:
            row = cur.execute(
                "SELECT envelope FROM commits WHERE commit_id = ?", (str(signed.commit_id),)
            ).fetchone()
            if row is None:
                raise ValueError(f"commit {signed.commit_id} is not an accepted commit")
            _put_blocks(cur, signed.blocks())
            cur.execute(
                "UPDATE commits SET envelope = ? WHERE commit_id = ?",
                (str(signed.cid), str(signed.commit_id)),
            )
            if self._meta("head") == row[0]:
                cur.execute("UPDATE meta SET value = ? WHERE name = 'head'", (str(signed.cid),))

    def drop_draft(self) -> SignedCommit | None:
        draft = self.draft
        with self._transaction() as cur:
            cur.execute("DELETE FROM draft")
        return draft

    def envelope_of(self, commit_id: CID) -> SignedCommit | None:
        """The newest envelope recorded for an accepted commit (old envelopes are not linked)."""
        row = self._db.execute(
            "SELECT envelope FROM commits WHERE commit_id = ?", (str(commit_id),)
        ).fetchone()
        return None if row is None else self._signed_commit(CID.from_text(row[0]))

    def accepted(self) -> list[tuple[int, CID, CID]]:
        """Accepted commits, oldest first, as (height, commit ID, envelope CID)."""
        rows = self._db.execute(
            "SELECT height, commit_id, envelope FROM commits ORDER BY height"
        ).fetchall()
        return [(int(h), CID.from_text(c), CID.from_text(e)) for h, c, e in rows]

    def get_meta(self, name: str) -> str | None:
        """Free-form settings other parts keep with the index (``x-`` names only)."""
        if not name.startswith("x-"):
            raise ValueError("extension settings are named x-…")
        return self._meta(name)

    def set_meta(self, name: str, value: str | None) -> None:
        if not name.startswith("x-"):
            raise ValueError("extension settings are named x-…")
        with self._transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))


def _put_blocks(cur: sqlite3.Cursor, blocks: Sequence[tuple[CID, bytes]]) -> None:
    cur.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?)", [(str(c), d) for c, d in blocks])


def _advance(cur: sqlite3.Cursor, signed: SignedCommit) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO commits VALUES (?, ?, ?)",
        (str(signed.commit_id), str(signed.cid), signed.height),
    )
    cur.execute("UPDATE meta SET value = ? WHERE name = 'head'", (str(signed.cid),))
