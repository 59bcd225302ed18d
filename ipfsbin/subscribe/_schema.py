"""The subscription state file's tables, and the migrations from each version to the next.

Version 1: ``subscriptions``. Version 2: ``held`` and ``pending`` (block
accounting). Version 3: the expiry of the accepted head and root (the
freeze-attack check reads them without network), when the maintainers were
last asked for newer roots, and ``releasing`` (blocks a recorded head let go,
until released). Version 4: ``scopes``. Version 5: ``platforms``, ``surveyed``
and ``replicas`` (host-scoped replicas). ``schema/subscription.md`` describes every column.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from ipfsbin import _sqlite

__all__ = ["MIGRATIONS"]

_SUBSCRIPTIONS: Final = """
CREATE TABLE IF NOT EXISTS subscriptions (
    name            TEXT PRIMARY KEY,   -- canonical IPNS name (k51...)
    pin_cid         TEXT,               -- RootPin(cid=...) as given on subscribe
    pin_key         TEXT,               -- RootPin(key_id=...) as given on subscribe
    roots           TEXT NOT NULL,      -- JSON list of root envelope CIDs, oldest first
                                        -- (empty for a key pin until the first sync)
    head            TEXT,               -- commit ID of the accepted head
    head_envelope   TEXT,               -- envelope CID of the accepted head (what IPNS names)
    height          INTEGER,
    index_root      TEXT,               -- index root of the accepted head
    sequence        INTEGER,            -- IPNS sequence of the record that led to the head
    accepted_at     REAL,
    checked_at      REAL,
    error           TEXT,
    error_at        REAL,
    created_at      REAL NOT NULL,
    CHECK ((pin_cid IS NULL) <> (pin_key IS NULL)),
    CHECK ((head IS NULL) = (height IS NULL))
);
"""
# version 2 added held and pending; a version-1 file gains them empty, and the first sync
# of each subscription lists the blocks of its accepted head (see _held.adopt_held)
_HELD: Final = (
    # blocks the accepted head of `name` needs (kept: pinned, or in the block file)
    "CREATE TABLE IF NOT EXISTS held (name TEXT NOT NULL, cid TEXT NOT NULL, "
    "PRIMARY KEY (name, cid)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS held_cid ON held (cid)",
    # blocks a sync of `name` is keeping for a head it has not recorded yet
    "CREATE TABLE IF NOT EXISTS pending (name TEXT NOT NULL, cid TEXT NOT NULL, "
    "PRIMARY KEY (name, cid)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS pending_cid ON pending (cid)",
)


# version 3: the expiry of the accepted head and of its newest root (the freeze-attack check
# needs them without network), when roots were last asked of the maintainers, and the blocks
# an accepted head let go that are not released yet (a sync killed before releasing them)
_VERSION_3_COLUMNS: Final = (
    ("head_expires", "INTEGER"),
    ("root_expires", "INTEGER"),
    ("roots_checked_at", "REAL"),
)
_RELEASING: Final = (
    "CREATE TABLE IF NOT EXISTS releasing (name TEXT NOT NULL, cid TEXT NOT NULL, "
    "PRIMARY KEY (name, cid)) WITHOUT ROWID"
)


def _version_3(db: sqlite3.Connection) -> None:
    columns = {row[1] for row in db.execute("PRAGMA table_info(subscriptions)")}
    for column, kind in _VERSION_3_COLUMNS:
        if column not in columns:  # a file rewound to an older version keeps its columns
            db.execute(f"ALTER TABLE subscriptions ADD COLUMN {column} {kind}")
    db.execute(_RELEASING)


# version 4 added scopes: the key prefixes the held index was synced under (a partial
# replica); no row, or NULL prefixes, means the whole index
_SCOPES: Final = "CREATE TABLE IF NOT EXISTS scopes (name TEXT PRIMARY KEY, prefixes TEXT)"


# version 5 added what a host-scoped replica learnt of the platforms (schema/subscription.md):
# each platform block met in an index (content-addressed, so shared by every subscription),
# the index nodes whose platforms are all known (not opened again), the replica policy given
# on subscribe, and the last survey's summary (what is kept and why)
_REPLICAS: Final = (
    "CREATE TABLE IF NOT EXISTS platforms (platform_id TEXT PRIMARY KEY, cid TEXT NOT NULL, "
    "data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS surveyed (name TEXT NOT NULL, cid TEXT NOT NULL, "
    "platforms TEXT NOT NULL, PRIMARY KEY (name, cid)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS replicas (name TEXT PRIMARY KEY, policy TEXT, survey TEXT)",
)


MIGRATIONS: Final = (
    _sqlite.Migration(version=1, apply=_sqlite.statements(_SUBSCRIPTIONS)),
    _sqlite.Migration(version=2, apply=_sqlite.statements(*_HELD)),
    _sqlite.Migration(version=3, apply=_version_3),
    _sqlite.Migration(version=4, apply=_sqlite.statements(_SCOPES)),
    _sqlite.Migration(version=5, apply=_sqlite.statements(*_REPLICAS)),
)
