"""A builder's feed: every attestation it made, append-only, under its own IPNS name.

The format is in ``schema/feed.md``: an index (the same prolly tree, commits
and changesets as ``ipfsbin.maintainer.chain``) whose trust root lists the
builder's key alone. Verification is :func:`ipfsbin.trust.feed.verify_feed`,
run here on every new commit before the head moves, exactly as followers run
it.

How the sharing queue calls it, after ``publish_binpkgs`` returned (its
"announce" stage)::

    with Feed.open(client, key) as feed:
        head = feed.append([result.attestation for result in results])
        record = publish_feed(client, feed)

- ``append`` is idempotent: an attestation already in the feed is skipped,
  and an append of nothing new makes no commit (``head.added`` is empty), so
  a queue that crashed after ``append`` and retries loses and duplicates
  nothing. Many attestations in one call make one commit: batch them.
- Appends from several processes are serialized by the state file's write
  transaction, so the queue and a person running ``ipfsbin feed append``
  cannot fork the feed.
- ``append`` raises ``FeedError`` for an attestation not signed by ``key``
  or whose descriptor does not decode (nothing is committed then), and the
  ``KuboError`` family when the daemon fails.
- ``publish_feed`` points the key's IPNS name at the head (sequence =
  height); it may run less often than ``append`` (say once per batch) and
  is safe to repeat.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from ipfsbin import _sqlite, paths
from ipfsbin.codec.cid import CID
from ipfsbin.errors import FeedError
from ipfsbin.index.changeset import put_changeset, split_changes
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.ipns.publish import PublishedRecord, publish_head
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import KuboPins, Pins, pin_name
from ipfsbin.store.base import BlockStore
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.commit import SignedCommit, load_commit, make_commit, put_commit, sign_commit
from ipfsbin.trust.feed import (
    FEED_CREATE_MESSAGE,
    FeedEntry,
    FeedMark,
    feed_entry,
    make_feed_root,
    verify_feed,
)
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot, load_root, put_root

__all__ = ["Feed", "FeedHead", "feed_state_path", "publish_feed"]

_WHAT: Final = "feed state"
_LOST_HINT: Final = (
    "move the file aside; the next append starts the feed over (followers refuse it)"
)
_MIGRATIONS: Final = (
    _sqlite.Migration(
        version=1,
        apply=_sqlite.statements("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"),
    ),
)


def feed_state_path(key_id: str) -> Path:
    """``<data dir>/feeds/<key ID>.sqlite``: the head and root of the feed of ``key_id``."""
    return paths.data_dir() / "feeds" / f"{key_id}.sqlite"


@dataclass(frozen=True, kw_only=True)
class FeedHead:
    """The feed's head after an append: ``added`` lists the keys this append added."""

    name: str
    envelope: CID
    commit_id: CID
    height: int
    index: CID
    entries: int
    added: tuple[FeedEntry, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "head": str(self.envelope),
            "commit": str(self.commit_id),
            "height": self.height,
            "index": str(self.index),
            "entries": self.entries,
            "added": [entry.to_json() for entry in self.added],
        }


class Feed:
    """The feed of one builder key. Open with :meth:`open` (Kubo) or the constructor."""

    def __init__(
        self, key: SigningKey, store: BlockStore, pins: Pins, path: Path | None = None
    ) -> None:
        self.key = key
        self.name = key.key_id
        self.store = store
        self.pins = pins
        self.path = feed_state_path(key.key_id) if path is None else Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = _sqlite.connect(
            self.path,
            what=_WHAT,
            recovery="the feed's head is the one its IPNS name serves; "
            "`ipfsbin feed show NAME` prints it",
        )
        try:
            _sqlite.migrate(self._db, _MIGRATIONS, what=_WHAT, path=self.path, error=FeedError)
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def open(cls, client: KuboClient, key: SigningKey, path: Path | None = None) -> Feed:
        """The feed of ``key`` with its blocks and pins in the Kubo node behind ``client``."""
        return cls(key, KuboBlockStore(client, offline=True), KuboPins(client), path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------

    def _meta(self, db: sqlite3.Connection, name: str) -> CID | None:
        row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else CID.from_text(row[0])

    def head_commit(self) -> SignedCommit | None:
        """The newest commit, or None before the first append."""
        envelope = self._meta(self._db, "head")
        return None if envelope is None else load_commit(self.store, envelope)

    def root(self) -> SignedRoot | None:
        envelope = self._meta(self._db, "root")
        return None if envelope is None else load_root(self.store, envelope)

    def head(self) -> FeedHead | None:
        signed = self.head_commit()
        return None if signed is None else self._head_of(signed, ())

    def _head_of(self, signed: SignedCommit, added: tuple[FeedEntry, ...]) -> FeedHead:
        return FeedHead(
            name=self.name,
            envelope=signed.cid,
            commit_id=signed.commit_id,
            height=signed.height,
            index=signed.commit.index,
            entries=ProllyTree(self.store).count(signed.commit.index),
            added=added,
        )

    # -- writing ------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Cursor]:
        with _sqlite.transaction(self._db), closing(self._db.cursor()) as cur:
            yield cur

    def _create(self, cur: sqlite3.Cursor, now: int) -> None:
        root = make_feed_root(self.key, now=now)
        put_root(self.store, root)
        first = sign_commit(
            make_commit(
                index=ProllyTree(self.store).empty(),
                root=root,
                time=now,
                expires=root.root.expires,
                message=FEED_CREATE_MESSAGE,
            ),
            self.key,
            roots=(root.cid,),
        )
        put_commit(self.store, first)
        verify_feed(self.store, self.name, first.cid, since=None, now=now)
        self.pins.pin(root.cid, pin_name("publish", "feed-root", self.name))
        self.pins.pin(first.cid, pin_name("publish", "feed", self.name))
        cur.executemany(
            "INSERT INTO meta VALUES (?, ?)", [("root", str(root.cid)), ("head", str(first.cid))]
        )

    def append(self, attestations: Sequence[CID], *, now: int | None = None) -> FeedHead:
        """Add the attestation envelopes not yet in the feed, in one commit (see module doc).

        The blocks of each attestation and its descriptor must be in the
        store (``publish_binpkgs`` put them there). Creates the feed on first use.
        """
        moment = int(time.time()) if now is None else now
        entries: dict[str, FeedEntry] = {}
        for cid in attestations:
            entry = feed_entry(self.store, cid, self.name)
            entries[entry.key] = entry
        # the first commit is kept even when the append after it fails: its pins stay accounted
        with self._locked() as cur:
            if self._meta(self._db, "head") is None:
                self._create(cur, moment)
        with self._locked() as cur:
            root_cid, head_cid = self._meta(self._db, "root"), self._meta(self._db, "head")
            if root_cid is None or head_cid is None:
                raise FeedError(f"feed state {self.path} lost its head", hint=_LOST_HINT)
            root, head = load_root(self.store, root_cid), load_commit(self.store, head_cid)
            tree = ProllyTree(self.store)
            base = head.commit.index
            new = {k: e for k, e in entries.items() if not tree.has(base, k)}
            if not new:
                return self._head_of(head, ())
            upserts = {key: entry.value.to_dag() for key, entry in new.items()}
            changes = put_changeset(self.store, split_changes(base, upserts))
            count = len(new)
            signed = sign_commit(
                make_commit(
                    index=tree.mutate(base, upserts),
                    root=root,
                    time=max(moment, head.commit.time),
                    parents=(head,),
                    expires=root.root.expires,
                    message=f"Add {count} attestation{'s' if count != 1 else ''}",
                    changes=changes,
                ),
                self.key,
                roots=(root.cid,),
            )
            put_commit(self.store, signed)
            verify_feed(self.store, self.name, signed.cid, since=FeedMark.of(head), now=moment)
            self.pins.move(head.cid, signed.cid, pin_name("publish", "feed", self.name))
            cur.execute("UPDATE meta SET value = ? WHERE name = 'head'", (str(signed.cid),))
        return self._head_of(signed, tuple(new[k] for k in sorted(new)))


def publish_feed(
    client: KuboClient,
    feed: Feed,
    *,
    allow_offline: bool = False,
    timeout: timedelta = timedelta(seconds=60),
) -> PublishedRecord:
    """Point the feed key's IPNS name at the feed's head (sequence = height)."""
    head, root = feed.head_commit(), feed.root()
    if head is None or root is None:
        raise FeedError(
            f"the feed of {feed.name} has no commit yet",
            hint="append attestations first (`ipfsbin feed append CID…` or `ipfsbin share`)",
        )
    return publish_head(
        client, feed.key, head=head, root=root, allow_offline=allow_offline, timeout=timeout
    )
