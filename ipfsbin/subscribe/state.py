"""Subscriptions and their accepted heads, kept in SQLite.

One row per followed IPNS name: what the user pinned (a root, or a
maintainer key), the trust roots accepted so far, the accepted head and its
height, and what the last check found. Every change is one transaction, so a
reader (the binhost shim, ``ipfsbin status``) sees either the old head or the
new one, never a mix; WAL mode lets readers go on while a sync writes.

A bad update never touches the head: :meth:`SubscriptionStore.record_failure`
writes only the error columns.

The blocks each subscription keeps are listed too (``held``), so a block two
subscriptions share is let go only when neither needs it any more; blocks a
sync is about to keep are listed first in ``pending``, so those of a sync that
died before recording its head can be found and let go by the next one; and
blocks a recorded head let go stay in ``releasing`` until they are released,
so those of a sync killed between recording and releasing are let go next time.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Final

from ipfsbin import _sqlite, paths
from ipfsbin.codec.cid import CID
from ipfsbin.errors import SubscriptionError
from ipfsbin.index.scope import EVERYTHING, KeyScope
from ipfsbin.ipns.name import canonical_name
from ipfsbin.subscribe._records import AcceptedHead, Subscription
from ipfsbin.subscribe._replicas import ReplicaTables
from ipfsbin.subscribe._schema import MIGRATIONS
from ipfsbin.trust.state import RootPin

__all__ = ["AcceptedHead", "Subscription", "SubscriptionStore", "default_state_path"]


_WHAT: Final = "subscription state"


def default_state_path() -> Path:
    """``<data dir>/subscriptions.sqlite``."""
    return paths.data_dir() / "subscriptions.sqlite"


def _cid(text: str | None) -> CID | None:
    return None if text is None else CID.from_text(text)


class SubscriptionStore(ReplicaTables):
    """The SQLite file of subscriptions. Open one per process; it is not shared across threads."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = default_state_path() if path is None else Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _sqlite.connect(
            self.path,
            what=_WHAT,
            recovery="subscribe to the indexes again (`ipfsbin subscribe NAME --root CID`); "
            "keys and index workspaces are kept in other files",
        )
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA synchronous=FULL")
            _sqlite.migrate(
                self._db,
                MIGRATIONS,
                what=_WHAT,
                path=self.path,
                error=SubscriptionError,
            )
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SubscriptionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return _sqlite.transaction(self._db)

    @contextmanager
    def keeping(self) -> Iterator[None]:
        """Hold the lock under which blocks are kept and released (across processes).

        Deciding that nobody holds a block and unpinning it must not interleave
        with another sync listing the same block as pending and pinning it, or
        that sync would record a head whose block was just unpinned.
        """
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- reading ----------------------------------------------------------------------

    def get(self, name: str) -> Subscription:
        row = self._db.execute(
            "SELECT * FROM subscriptions WHERE name = ?", (canonical_name(name),)
        ).fetchone()
        if row is None:
            raise SubscriptionError(
                f"not subscribed to {name}",
                hint="subscribe first: `ipfsbin subscribe NAME --root CID`",
            )
        return _from_row(row)

    def all(self) -> list[Subscription]:
        rows = self._db.execute("SELECT * FROM subscriptions ORDER BY created_at, name")
        return [_from_row(row) for row in rows]

    def held(self, name: str) -> frozenset[CID]:
        """The blocks the accepted head of ``name`` needs, as recorded."""
        rows = self._db.execute("SELECT cid FROM held WHERE name = ?", (canonical_name(name),))
        return frozenset(CID.from_text(row[0]) for row in rows)

    def pending(self, name: str) -> frozenset[CID]:
        """Blocks a sync of ``name`` kept without recording a head (left by a crash)."""
        rows = self._db.execute("SELECT cid FROM pending WHERE name = ?", (canonical_name(name),))
        return frozenset(CID.from_text(row[0]) for row in rows)

    def releasing(self, name: str) -> frozenset[CID]:
        """Blocks an accepted head of ``name`` let go that were not released yet."""
        rows = self._db.execute("SELECT cid FROM releasing WHERE name = ?", (canonical_name(name),))
        return frozenset(CID.from_text(row[0]) for row in rows)

    def unheld(self, cids: Iterable[CID], *, besides: str | None = None) -> list[CID]:
        """Those of ``cids`` no subscription holds, nor lists as pending (except ``besides``)."""
        other = "" if besides is None else canonical_name(besides)
        free = []
        for cid in dict.fromkeys(cids):
            text = str(cid)
            taken = self._db.execute(
                "SELECT 1 FROM held WHERE cid = ? UNION ALL "
                "SELECT 1 FROM pending WHERE cid = ? AND name != ? LIMIT 1",
                (text, text, other),
            ).fetchone()
            if taken is None:
                free.append(cid)
        return free

    def releasable(self, name: str) -> list[CID]:
        """Blocks only ``name`` holds, has pending or is releasing: what unsubscribing frees."""
        canonical = canonical_name(name)
        rows = self._db.execute(
            "SELECT cid FROM (SELECT cid FROM held WHERE name = ?1 "
            "UNION SELECT cid FROM pending WHERE name = ?1 "
            "UNION SELECT cid FROM releasing WHERE name = ?1) AS mine "
            "WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.cid = mine.cid AND h.name != ?1) "
            "AND NOT EXISTS (SELECT 1 FROM pending p WHERE p.cid = mine.cid AND p.name != ?1) "
            "ORDER BY cid",
            (canonical,),
        )
        return [CID.from_text(row[0]) for row in rows]

    # -- writing ----------------------------------------------------------------------

    def add_pending(self, name: str, cids: Iterable[CID]) -> None:
        """List ``cids`` as being kept by a sync of ``name``, before they are kept."""
        canonical = canonical_name(name)
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO pending (name, cid) VALUES (?, ?)",
                [(canonical, str(c)) for c in dict.fromkeys(cids)],
            )

    def clear_pending(self, name: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM pending WHERE name = ?", (canonical_name(name),))

    def clear_releasing(self, name: str, cids: Iterable[CID]) -> None:
        """``cids`` were released (or are held again): stop listing them for ``name``."""
        canonical = canonical_name(name)
        with self._write() as db:
            db.executemany(
                "DELETE FROM releasing WHERE name = ? AND cid = ?",
                [(canonical, str(c)) for c in dict.fromkeys(cids)],
            )

    def adopt_held(self, name: str, cids: Iterable[CID]) -> None:
        """Record blocks already kept for the accepted head (state written before ``held``)."""
        canonical = canonical_name(name)
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO held (name, cid) VALUES (?, ?)",
                [(canonical, str(c)) for c in dict.fromkeys(cids)],
            )

    def add(self, name: str, pin: RootPin, root: CID | None, *, now: float) -> Subscription:
        """Subscribe to ``name``; ``root`` is the envelope CID of the first trust root.

        ``root`` may be ``None`` only with a key pin: the roots are then taken
        from the envelope of the first head synced. Subscribing again with the
        same pin (and root, if given) is a no-op; with another one it is refused
        (unsubscribe first), so a typo cannot silently replace what the user trusted.
        """
        if root is None and pin.key_id is None:
            raise ValueError("a subscription pinned by CID needs its root envelope")
        canonical = canonical_name(name)
        with self._write() as db:
            row = db.execute("SELECT * FROM subscriptions WHERE name = ?", (canonical,)).fetchone()
            if row is not None:
                existing = _from_row(row)
                if existing.pin == pin and (root is None or existing.roots[:1] == (root,)):
                    return existing
                raise SubscriptionError(
                    f"already subscribed to {canonical} with {existing.pin.describe()}",
                    hint=f"run `ipfsbin unsubscribe {canonical}` first to change the trust root",
                )
            db.execute(
                "INSERT INTO subscriptions (name, pin_cid, pin_key, roots, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    canonical,
                    None if pin.cid is None else str(pin.cid),
                    pin.key_id,
                    json.dumps([] if root is None else [str(root)]),
                    now,
                ),
            )
        return self.get(canonical)

    def scope(self, name: str) -> KeyScope:
        """The key prefixes the held index of ``name`` was synced under."""
        row = self._db.execute(
            "SELECT prefixes FROM scopes WHERE name = ?", (canonical_name(name),)
        ).fetchone()
        if row is None or row["prefixes"] is None:
            return EVERYTHING
        return KeyScope(prefixes=tuple(json.loads(row["prefixes"])))

    def record_scope(self, name: str, scope: KeyScope) -> None:
        prefixes = scope.to_json()
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO scopes (name, prefixes) VALUES (?, ?)",
                (canonical_name(name), None if prefixes is None else json.dumps(prefixes)),
            )

    def remove(self, name: str) -> None:
        """Forget ``name``, with the blocks it held and had pending (they are not released)."""
        canonical = canonical_name(name)
        with self._write() as db:
            cursor = db.execute("DELETE FROM subscriptions WHERE name = ?", (canonical,))
            if cursor.rowcount == 0:
                raise SubscriptionError(f"not subscribed to {canonical}")
            for table in ("held", "pending", "releasing", "scopes", "surveyed", "replicas"):
                db.execute(f"DELETE FROM {table} WHERE name = ?", (canonical,))  # noqa: S608

    def record_accepted(
        self,
        name: str,
        accepted: AcceptedHead,
        *,
        expect_head: CID | None,
        now: float,
        keep: Iterable[CID] = (),
        release: Iterable[CID] = (),
    ) -> Subscription:
        """Move the head to ``accepted`` if the stored head is still ``expect_head``.

        The compare-and-set keeps two syncs of the same name from undoing each
        other: the second one to finish finds the head moved and is refused.
        In the same transaction ``keep`` joins the blocks the subscription
        holds, ``release`` leaves them, and its pending list is emptied.
        """
        canonical = canonical_name(name)
        keep_set = dict.fromkeys(keep)
        kept = [str(c) for c in keep_set]
        dropped = [str(c) for c in dict.fromkeys(release) if c not in keep_set]
        with self._write() as db:
            row = db.execute(
                "SELECT head, height FROM subscriptions WHERE name = ?", (canonical,)
            ).fetchone()
            if row is None:
                raise SubscriptionError(f"not subscribed to {canonical}")
            if _cid(row["head"]) != expect_head:
                raise SubscriptionError(
                    f"the head of {canonical} moved to {row['head']} (height {row['height']}) "
                    "while this sync ran; not overwriting it",
                    hint="another sync is running; try again",
                )
            if row["height"] is not None and accepted.height < row["height"]:
                raise SubscriptionError(
                    f"refusing to record height {accepted.height} below {row['height']}"
                )
            db.execute(
                "UPDATE subscriptions SET roots = ?, head = ?, head_envelope = ?, height = ?, "
                "index_root = ?, sequence = ?, accepted_at = ?, checked_at = ?, error = NULL, "
                "error_at = NULL, head_expires = ?, root_expires = ? WHERE name = ?",
                (
                    json.dumps([str(r) for r in accepted.roots]),
                    str(accepted.head),
                    str(accepted.head_envelope),
                    accepted.height,
                    str(accepted.index_root),
                    accepted.sequence,
                    now,
                    now,
                    accepted.head_expires,
                    accepted.root_expires,
                    canonical,
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO held (name, cid) VALUES (?, ?)",
                [(canonical, c) for c in kept],
            )
            db.executemany(
                "DELETE FROM held WHERE name = ? AND cid = ?", [(canonical, c) for c in dropped]
            )
            # listed until released: a process killed before releasing leaves them here
            db.executemany(
                "INSERT OR IGNORE INTO releasing (name, cid) VALUES (?, ?)",
                [(canonical, c) for c in dropped],
            )
            db.execute("DELETE FROM pending WHERE name = ?", (canonical,))
        return self.get(canonical)

    def record_checked(self, name: str, *, now: float) -> None:
        """Nothing new: only the time of the check (and a cleared error) is written."""
        with self._write() as db:
            db.execute(
                "UPDATE subscriptions SET checked_at = ?, error = NULL, error_at = NULL "
                "WHERE name = ?",
                (now, canonical_name(name)),
            )

    def record_failure(self, name: str, error: str, *, now: float) -> None:
        """Keep the reason a check failed; the accepted head is left exactly as it was."""
        with self._write() as db:
            db.execute(
                "UPDATE subscriptions SET checked_at = ?, error = ?, error_at = ? WHERE name = ?",
                (now, error, now, canonical_name(name)),
            )

    def set_expiry(self, name: str, *, head_expires: int, root_expires: int) -> None:
        """Record the expiry of the accepted head and root (state written before version 3)."""
        with self._write() as db:
            db.execute(
                "UPDATE subscriptions SET head_expires = ?, root_expires = ? WHERE name = ?",
                (head_expires, root_expires, canonical_name(name)),
            )

    def record_roots(
        self,
        name: str,
        roots: Sequence[CID],
        *,
        root_expires: int,
        keep: Iterable[CID],
        expect_roots: Sequence[CID],
    ) -> None:
        """Roots learned from the maintainers' announcements, in one transaction.

        ``roots`` (all envelopes, oldest first) replace the list if it is still
        ``expect_roots``; ``keep`` (their blocks, kept already) joins ``held``,
        and the pending list is emptied.
        """
        canonical = canonical_name(name)
        with self._write() as db:
            row = db.execute(
                "SELECT roots FROM subscriptions WHERE name = ?", (canonical,)
            ).fetchone()
            if row is None:
                raise SubscriptionError(f"not subscribed to {canonical}")
            if json.loads(row["roots"]) != [str(r) for r in expect_roots]:
                raise SubscriptionError(
                    f"the trust roots of {canonical} changed while this sync ran",
                    hint="another sync is running; try again",
                )
            db.execute(
                "UPDATE subscriptions SET roots = ?, root_expires = ? WHERE name = ?",
                (json.dumps([str(r) for r in roots]), root_expires, canonical),
            )
            db.executemany(
                "INSERT OR IGNORE INTO held (name, cid) VALUES (?, ?)",
                [(canonical, str(c)) for c in dict.fromkeys(keep)],
            )
            db.execute("DELETE FROM pending WHERE name = ?", (canonical,))

    def record_roots_checked(self, name: str, *, now: float) -> None:
        """When the maintainers were last asked for newer roots."""
        with self._write() as db:
            db.execute(
                "UPDATE subscriptions SET roots_checked_at = ? WHERE name = ?",
                (now, canonical_name(name)),
            )

    def set_roots(self, name: str, roots: Sequence[CID]) -> None:
        """Replace the list of root envelopes (a rotation the user supplied)."""
        if not roots:
            raise ValueError("at least one root is needed")
        with self._write() as db:
            db.execute(
                "UPDATE subscriptions SET roots = ? WHERE name = ?",
                (json.dumps([str(r) for r in roots]), canonical_name(name)),
            )


def _from_row(row: sqlite3.Row) -> Subscription:
    pin = (
        RootPin(cid=CID.from_text(row["pin_cid"]))
        if row["pin_cid"] is not None
        else RootPin(key_id=row["pin_key"])
    )
    return Subscription(
        name=row["name"],
        pin=pin,
        roots=tuple(CID.from_text(t) for t in json.loads(row["roots"])),
        head=_cid(row["head"]),
        head_envelope=_cid(row["head_envelope"]),
        height=row["height"],
        index_root=_cid(row["index_root"]),
        sequence=row["sequence"],
        accepted_at=row["accepted_at"],
        checked_at=row["checked_at"],
        error=row["error"],
        error_at=row["error_at"],
        created_at=row["created_at"],
        head_expires=row["head_expires"],
        root_expires=row["root_expires"],
        roots_checked_at=row["roots_checked_at"],
    )
