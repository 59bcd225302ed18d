"""Pins ipfsbin makes in Kubo: one naming scheme, and the maintainer's moving pins.

Every pin ipfsbin makes is named by :func:`pin_name`: ``ipfsbin:<role>``
then what it keeps, colon-separated (``ipfsbin:follow``,
``ipfsbin:index:default:head``, ``ipfsbin:publish:manifest:dev-libs/foo-1``,
``ipfsbin:pin:<manifest CID>`` for a binary the user pinned, ``ipfsbin:share``
for the attestations ``ipfsbin share`` published, ``ipfsbin:prefetch`` for the
updates fetched ahead of emerge, ``ipfsbin:keep`` for what ``ipfsbin gc``
keeps: installed packages' builds and the catalog's manifests),
so a pin's maker can be told from its name alone (``pin ls``, GC, doctor).

A maintainer's head commit envelope is pinned recursively: that covers the
commit, its index tree, every manifest and binpkg the index links and
(through the parents) all of history. The trust root's envelope is pinned on
its own, and so is a draft waiting for co-signatures, so that co-signers
elsewhere can fetch it by CID.

Kubo keeps at most one pin per CID whatever its name, direct or recursive,
and refuses to mix them: a direct pin on a CID pinned recursively is refused
("already pinned recursively"), a direct unpin of it too ("is pinned
recursively"), and a recursive pin silently replaces a direct one. A
maintainer's workspace pins its head and root envelopes recursively; a
follower of the same index on the same node holds those very envelopes
directly. So the pins are accounted once per node, in the
:class:`PinLedger` (``pins.sqlite`` in the data directory): every holder (a
workspace pin name, the follower as one holder whose per-subscription counts
live in its own state) states what it needs, and each CID's pin in Kubo is
set from the union of the needs: recursive if any holder needs it
recursive, else direct if any needs it at all, else none. A pin ipfsbin did
not make is never removed here.

The follower's needs are direct but many (an index's every node): one holder
DAG (:mod:`ipfsbin.kubo.holder`) pinned recursively as ``ipfsbin:follow``
holds them, and a CID the follower alone needs has no pin of its own. Its
roots are listed (``roots``) before they are pinned, the current one marked
only once pinned: killed anywhere, the current root is pinned and any other
listed one is unpinned by the next change. Direct pins the follower made
before holders existed are released once a holder covers them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final, Literal, Protocol

from ipfsbin import _sqlite, paths
from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboCommandError, KuboError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.holder import put_holder
from ipfsbin.pause import pause_point

__all__ = [
    "FOLLOW_HOLDER",
    "PIN_PREFIX",
    "KuboPins",
    "NoPins",
    "PinLedger",
    "PinRole",
    "Pins",
    "default_ledger_path",
    "is_ipfsbin_pin",
    "pin_name",
]

PIN_PREFIX: Final = "ipfsbin"
PinRole = Literal[
    "follow", "index", "publish", "cosign", "pin", "mirror", "share", "keep", "prefetch"
]
_ROLES: Final = frozenset(
    {"follow", "index", "publish", "cosign", "pin", "mirror", "share", "keep", "prefetch"}
)
# Names used before this scheme; still recognised as ipfsbin's own.
_LEGACY_PREFIXES: Final = ("ipfsbin-follow", "ipfsbin ")


def pin_name(role: PinRole, *subject: str) -> str:
    """``ipfsbin:<role>:<subject>...``, the name of every pin ipfsbin makes."""
    if role not in _ROLES:
        raise ValueError(f"unknown pin role {role!r}")
    if any(not part or ":" in part or part != part.strip() for part in subject):
        raise ValueError(f"pin name parts must be non-empty words without ':': {subject!r}")
    return ":".join((PIN_PREFIX, role, *subject))


def is_ipfsbin_pin(name: str) -> bool:
    """Whether a pin of this name was made by ipfsbin (this scheme or an earlier one)."""
    return name.startswith(PIN_PREFIX + ":") or name.startswith(_LEGACY_PREFIXES)


# --- the ledger -----------------------------------------------------------------------

FOLLOW_HOLDER: Final = pin_name("follow")
"""The follower's holder name (and pin name): its per-subscription counts live in its state."""
_BATCH: Final = 200
_PIN_TIMEOUT_SECONDS: Final = 600.0
_WHAT: Final = "pin ledger"
_MIGRATIONS: Final = (
    _sqlite.Migration(
        version=1,
        apply=_sqlite.statements(
            "CREATE TABLE IF NOT EXISTS needs (holder TEXT NOT NULL, cid TEXT NOT NULL, "
            "recursive INTEGER NOT NULL, PRIMARY KEY (holder, cid)) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS needs_cid ON needs (cid)",
        ),
    ),
    _sqlite.Migration(
        version=2,
        apply=_sqlite.statements(
            # every holder DAG root that may be pinned; ``current`` is pinned and complete
            "CREATE TABLE IF NOT EXISTS roots (holder TEXT NOT NULL, cid TEXT NOT NULL, "
            "current INTEGER NOT NULL, PRIMARY KEY (holder, cid)) WITHOUT ROWID",
            # holders whose direct pins from before holder DAGs were released
            "CREATE TABLE IF NOT EXISTS swept (holder TEXT PRIMARY KEY) WITHOUT ROWID",
        ),
    ),
)
_DAG_HOLDERS: Final = frozenset({FOLLOW_HOLDER})
"""Holders whose direct needs one holder DAG keeps, instead of a direct pin each."""
_DAG_MARKS: Final = ",".join("?" * len(_DAG_HOLDERS))
_FOLLOW_LEGACY: Final = ("ipfsbin-follow",)


def default_ledger_path() -> Path:
    """``<data dir>/pins.sqlite``."""
    return paths.data_dir() / "pins.sqlite"


class PinLedger:
    """The needs of every holder on one node, and Kubo's pins kept to match them."""

    def __init__(self, client: KuboClient, path: Path | None = None) -> None:
        self.client = client
        self.path = default_ledger_path() if path is None else Path(path)
        self._ready = False

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction on a connection of its own (a ledger is made and dropped freely)."""
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = _sqlite.connect(
            self.path,
            what=_WHAT,
            recovery="the next syncs and index commands record what they need pinned again",
            timeout=30.0,
        )
        try:
            if not self._ready:
                _sqlite.migrate(db, _MIGRATIONS, what=_WHAT, path=self.path, error=KuboError)
                self._ready = True
            with _sqlite.transaction(db):
                yield db
        finally:
            db.close()

    # -- reading ------------------------------------------------------------------

    def needs(self, cid: CID) -> dict[str, bool]:
        """Holder -> whether it needs ``cid`` recursively."""
        with self._write() as db:
            rows = db.execute(
                "SELECT holder, recursive FROM needs WHERE cid = ?", (str(cid),)
            ).fetchall()
        return {str(holder): bool(recursive) for holder, recursive in rows}

    def held_by(self, holder: str) -> dict[CID, bool]:
        """What ``holder`` needs: CID -> whether recursively."""
        with self._write() as db:
            rows = db.execute(
                "SELECT cid, recursive FROM needs WHERE holder = ?", (holder,)
            ).fetchall()
        return {CID.from_text(cid): bool(recursive) for cid, recursive in rows}

    def holders(self) -> dict[str, int]:
        """Every holder and how many CIDs it needs."""
        with self._write() as db:
            rows = db.execute("SELECT holder, COUNT(*) FROM needs GROUP BY holder").fetchall()
        return {str(holder): int(count) for holder, count in rows}

    # -- holding and releasing ---------------------------------------------------------

    def hold(
        self, holder: str, cids: Sequence[CID], *, recursive: bool, one_request: bool = False
    ) -> None:
        """Record that ``holder`` needs ``cids`` (recursively or not), then pin them.

        ``one_request`` pins recursive needs with one ``pin/add`` per batch
        of CIDs instead of a check and a pin each (for many new CIDs, such
        as a batch of published packages; one already pinned takes this
        holder's name).
        """
        unique = list(dict.fromkeys(cids))
        with self._write() as db:
            db.executemany(
                "INSERT INTO needs (holder, cid, recursive) VALUES (?, ?, ?) "
                "ON CONFLICT (holder, cid) DO UPDATE SET recursive = excluded.recursive",
                [(holder, str(c), int(recursive)) for c in unique],
            )
        if holder in _DAG_HOLDERS and not recursive:
            self._pin_holder(holder)
            return
        if recursive and one_request:
            for start in range(0, len(unique), _BATCH):
                self.client.pin_add(
                    unique[start : start + _BATCH],
                    recursive=True,
                    name=holder,
                    timeout=_PIN_TIMEOUT_SECONDS,
                )
            return
        if recursive:
            for cid in unique:
                if not self.client.is_pinned(cid, pin_type="recursive"):
                    self.client.pin_add(
                        [cid], recursive=True, name=holder, timeout=_PIN_TIMEOUT_SECONDS
                    )
            return
        self._pin_direct(unique, name=holder)

    def release(self, holder: str, cids: Sequence[CID]) -> list[CID]:
        """``holder`` no longer needs ``cids``; returns those now unpinned in Kubo.

        The blocks nobody else needs are unpinned in batches (the common case:
        a follower letting go of old index nodes); a batch Kubo refuses (a CID
        pinned recursively, or not at all) is settled one CID at a time.
        """
        unique = list(dict.fromkeys(cids))
        texts = [str(c) for c in unique]
        dag = holder in _DAG_HOLDERS
        with self._write() as db:
            recursive = {
                row[0]
                for row in db.execute(
                    "SELECT cid FROM needs WHERE holder = ? AND recursive = 1", (holder,)
                ).fetchall()
            }
            db.executemany(
                "DELETE FROM needs WHERE holder = ? AND cid = ?", [(holder, t) for t in texts]
            )
            needed: set[str] = set()  # by anyone at all
            still: set[str] = set()  # by a pin of its own
            for start in range(0, len(texts), _BATCH):
                chunk = texts[start : start + _BATCH]
                marks = ",".join("?" * len(chunk))
                for cid, own in db.execute(
                    f"SELECT cid, MAX(recursive = 1 OR holder NOT IN ({_DAG_MARKS})) "  # noqa: S608
                    f"FROM needs WHERE cid IN ({marks}) GROUP BY cid",
                    [*_DAG_HOLDERS, *chunk],
                ):
                    needed.add(cid)
                    if own:
                        still.add(cid)
        if dag:
            # the holder lets go of them; a pin of another holder's stays as it is
            self._pin_holder(holder)
            return [c for c in unique if str(c) not in needed]
        unpinned: list[CID] = []
        free = [c for c in unique if str(c) not in still]
        for start in range(0, len(free), _BATCH):
            batch = free[start : start + _BATCH]
            try:
                self.client.pin_rm(batch, recursive=False)
            except KuboCommandError as exc:
                if "not pinned" not in exc.kubo_message and "recursively" not in exc.kubo_message:
                    raise
                unpinned += self._settle(batch)
            else:
                unpinned += batch
        # a recursive need let go while direct ones stay: the pin becomes direct
        unpinned += self._settle([c for c in unique if str(c) in still and str(c) in recursive])
        return unpinned

    def release_recursive(self, cid: CID) -> None:
        """Drop every recursive need on ``cid`` (a maintainer's unpin); direct needs stay."""
        with self._write() as db:
            db.execute("DELETE FROM needs WHERE cid = ? AND recursive = 1", (str(cid),))
        self._settle([cid])

    def move(self, holder: str, old: CID | None, new: CID) -> None:
        """``holder`` needs ``new`` recursively instead of ``old`` (a workspace head moving).

        When nobody else needs ``old``, Kubo's ``pin/update`` moves the pin and
        walks only the difference between the two DAGs.
        """
        if old is None or old == new:
            self.hold(holder, [new], recursive=True)
            return
        others = {h: r for h, r in self.needs(old).items() if h != holder}
        movable = (
            not others
            and self.client.is_pinned(old, pin_type="recursive")
            and not self.client.is_pinned(new, pin_type="recursive")
        )
        with self._write() as db:
            db.execute("DELETE FROM needs WHERE holder = ? AND cid = ?", (holder, str(old)))
            db.execute(
                "INSERT INTO needs (holder, cid, recursive) VALUES (?, ?, 1) "
                "ON CONFLICT (holder, cid) DO UPDATE SET recursive = 1",
                (holder, str(new)),
            )
        if movable:
            self.client.pin_update(old, new, unpin=True)
            return
        self.hold(holder, [new], recursive=True)
        self._settle([old])

    # -- Kubo -----------------------------------------------------------------------

    def _pin_direct(self, cids: Sequence[CID], *, name: str) -> None:
        for start in range(0, len(cids), _BATCH):
            batch = list(cids[start : start + _BATCH])
            try:
                self.client.pin_add(batch, recursive=False, name=name)
            except KuboCommandError as exc:
                if "already pinned recursively" not in exc.kubo_message:
                    raise
                # Kubo refuses the whole batch for one CID pinned recursively: go one by one
                for cid in batch:
                    self._pin_one_direct(cid, name)

    def _pin_one_direct(self, cid: CID, name: str) -> None:
        try:
            self.client.pin_add([cid], recursive=False, name=name)
        except KuboCommandError as exc:
            if "already pinned recursively" not in exc.kubo_message:
                raise  # a recursive pin keeps it anyway

    def _settle(self, cids: Sequence[CID]) -> list[CID]:
        """Make each CID's pin match its needs; returns those left unpinned."""
        unpinned: list[CID] = []
        for cid in cids:
            # a direct need of a holder DAG's holder is kept by the DAG, not by a pin
            held = self.needs(cid)
            needs = {h: r for h, r in held.items() if r or h not in _DAG_HOLDERS}
            wanted = None if not needs else "recursive" if any(needs.values()) else "direct"
            if wanted == "recursive":
                continue  # a recursive need is never weakened here
            recursive = self.client.is_pinned(cid, pin_type="recursive")
            if wanted == "direct":
                if recursive and self._ours_recursive(cid):
                    # the recursive holder let go: a direct pin keeps it for the others
                    self.client.pin_rm([cid], recursive=True)
                    self._pin_one_direct(cid, min(needs))
                continue
            if recursive:
                if self._ours_recursive(cid):
                    self.client.pin_rm([cid], recursive=True)
                    unpinned += [] if held else [cid]
                continue
            if self._unpin_direct(cid) and not held:
                unpinned.append(cid)
        return unpinned

    # -- holder DAGs -------------------------------------------------------------------

    def holder_root(self, holder: str) -> CID | None:
        """The root of ``holder``'s current holder DAG (pinned), if it has one."""
        with self._write() as db:
            row = db.execute(
                "SELECT cid FROM roots WHERE holder = ? AND current = 1", (holder,)
            ).fetchone()
        return None if row is None else CID.from_text(row[0])

    def _pin_holder(self, holder: str) -> None:
        """Pin the holder DAG of ``holder``'s direct needs; unpin the roots it replaces."""
        with self._write() as db:
            wanted = [
                CID.from_text(row[0])
                for row in db.execute(
                    "SELECT cid FROM needs WHERE holder = ? AND recursive = 0", (holder,)
                )
            ]
        current = self.holder_root(holder)
        root = put_holder(self.client, wanted) if wanted else None
        if root is None:  # nothing to hold: no pin at all
            with self._write() as db:
                db.execute("UPDATE roots SET current = 0 WHERE holder = ?", (holder,))
        elif root != current:
            with self._write() as db:
                db.execute(
                    "INSERT OR IGNORE INTO roots (holder, cid, current) VALUES (?, ?, 0)",
                    (holder, str(root)),
                )
            if self.client.is_pinned(root, pin_type="recursive"):
                pass  # the same set pinned before (a killed change): nothing to walk
            elif current is not None and self.client.is_pinned(current, pin_type="recursive"):
                # walks only the part of the new DAG the old one does not hold
                self.client.pin_update(current, root, unpin=False)
            else:
                self.client.pin_add(
                    [root], recursive=True, name=holder, timeout=_PIN_TIMEOUT_SECONDS
                )
            pause_point("holder-pinned")
            with self._write() as db:
                db.execute(
                    "UPDATE roots SET current = (cid = ?) WHERE holder = ?", (str(root), holder)
                )
        self._drop_roots(holder, root)
        self._sweep(holder)

    def _drop_roots(self, holder: str, keep: CID | None) -> None:
        """Unpin every listed root of ``holder`` but ``keep`` (an earlier or unfinished one)."""
        with self._write() as db:
            stale = [
                row[0]
                for row in db.execute("SELECT cid FROM roots WHERE holder = ?", (holder,))
                if row[0] != str(keep)
            ]
        for text in stale:
            try:
                self.client.pin_rm([CID.from_text(text)], recursive=True)
            except KuboCommandError as exc:
                if "not pinned" not in exc.kubo_message:
                    raise
            with self._write() as db:
                db.execute("DELETE FROM roots WHERE holder = ? AND cid = ?", (holder, text))

    def _sweep(self, holder: str) -> None:
        """Once, with the DAG pinned: unpin the direct pins ``holder`` made before DAGs."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM swept WHERE holder = ?", (holder,)).fetchone():
                return
        names = (holder, *(_FOLLOW_LEGACY if holder == FOLLOW_HOLDER else ()))
        mine = [p.cid for p in self.client.pin_ls(pin_type="direct") if p.name.startswith(names)]
        self._settle(mine)
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO swept (holder) VALUES (?)", (holder,))

    def _ours_recursive(self, cid: CID) -> bool:
        """Was the recursive pin on ``cid`` made by ipfsbin (its name is one of our holders)?"""
        try:
            pins = self.client.pin_ls([cid], pin_type="recursive")
        except KuboError:
            return False
        return any(is_ipfsbin_pin(p.name) for p in pins)

    def _unpin_direct(self, cid: CID) -> bool:
        try:
            self.client.pin_rm([cid], recursive=False)
        except KuboCommandError as exc:
            if "not pinned" in exc.kubo_message:
                return False
            raise
        return True


# --- a maintainer's moving pins ------------------------------------------------------------


class Pins(Protocol):
    def pin(self, cid: CID, name: str) -> None:
        """Pin ``cid`` recursively (no-op when it already is)."""
        ...

    def move(self, old: CID | None, new: CID, name: str) -> None:
        """Move a recursive pin from ``old`` to ``new`` (just pin ``new`` when ``old`` is None)."""
        ...

    def unpin(self, cid: CID) -> None:
        """Drop the recursive pin on ``cid`` if there is one."""
        ...


class KuboPins:
    """:class:`Pins` over a Kubo daemon, accounted in the node's pin ledger."""

    def __init__(self, client: KuboClient, ledger: PinLedger | None = None) -> None:
        self.client = client
        self.ledger = PinLedger(client) if ledger is None else ledger

    def pin(self, cid: CID, name: str) -> None:
        self.ledger.hold(name, [cid], recursive=True)

    def move(self, old: CID | None, new: CID, name: str) -> None:
        self.ledger.move(name, old, new)

    def unpin(self, cid: CID) -> None:
        self.ledger.release_recursive(cid)


class NoPins:
    """Records what would be pinned; for block stores that keep everything (memory)."""

    def __init__(self) -> None:
        self.pinned: set[CID] = set()

    def pin(self, cid: CID, name: str) -> None:
        self.pinned.add(cid)

    def move(self, old: CID | None, new: CID, name: str) -> None:
        if old is not None:
            self.pinned.discard(old)
        self.pinned.add(new)

    def unpin(self, cid: CID) -> None:
        self.pinned.discard(cid)
