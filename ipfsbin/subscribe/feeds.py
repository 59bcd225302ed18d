"""Following builder feeds: resolve a feed's IPNS name, verify, remember the head accepted.

Verification is :func:`ipfsbin.trust.feed.verify_feed` (``schema/feed.md``
§3). What a follower accepted last is kept per *scope* in
``<data dir>/feeds/followed.sqlite``: each index that pulls feeds
(``index:<name>``) and ``ipfsbin feed show`` (``show``) keep their own mark,
so one reader moving on never makes another skip entries. A mark is only
recorded after its reader used the update (:meth:`FeedMarks.record`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Final

from ipfsbin import _sqlite, paths
from ipfsbin.codec.cid import CID
from ipfsbin.errors import CodecError, FeedError, SubscriptionError
from ipfsbin.ipns.name import canonical_name
from ipfsbin.ipns.publish import current_record
from ipfsbin.kubo.client import KuboClient
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.feed import FeedMark, FeedUpdate, verify_feed

__all__ = ["FeedMarks", "read_feed"]

_WHAT: Final = "followed feeds"
_MIGRATIONS: Final = (
    _sqlite.Migration(
        version=1,
        apply=_sqlite.statements(
            "CREATE TABLE marks (scope TEXT NOT NULL, name TEXT NOT NULL, "
            "envelope TEXT NOT NULL, commit_id TEXT NOT NULL, height INTEGER NOT NULL, "
            "idx TEXT NOT NULL, PRIMARY KEY (scope, name)) WITHOUT ROWID"
        ),
    ),
)
_FETCH_TIMEOUT: Final = timedelta(seconds=60)


class FeedMarks:
    """The head of each feed a scope accepted last."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = paths.data_dir() / "feeds" / "followed.sqlite" if path is None else path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = _sqlite.connect(
            self.path,
            what=_WHAT,
            recovery="the next pull reads each feed from its start again and checks it whole",
        )
        try:
            _sqlite.migrate(db, _MIGRATIONS, what=_WHAT, path=self.path, error=SubscriptionError)
            with _sqlite.transaction(db):
                yield db
        finally:
            db.close()

    def get(self, scope: str, name: str) -> FeedMark | None:
        with self._db() as db:
            row = db.execute(
                "SELECT envelope, commit_id, height, idx FROM marks WHERE scope = ? AND name = ?",
                (scope, canonical_name(name)),
            ).fetchone()
        if row is None:
            return None
        envelope, commit_id, height, index = row
        return FeedMark(
            envelope=CID.from_text(envelope),
            commit_id=CID.from_text(commit_id),
            height=int(height),
            index=CID.from_text(index),
        )

    def record(self, scope: str, update: FeedUpdate) -> None:
        """Remember ``update``'s head as accepted by ``scope`` (never moves a mark back)."""
        mark = update.mark
        with self._db() as db:
            db.execute(
                "INSERT INTO marks VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, name) DO UPDATE "
                "SET envelope = excluded.envelope, commit_id = excluded.commit_id, "
                "height = excluded.height, idx = excluded.idx WHERE excluded.height >= height",
                (
                    scope,
                    update.name,
                    str(mark.envelope),
                    str(mark.commit_id),
                    mark.height,
                    str(mark.index),
                ),
            )


def read_feed(
    client: KuboClient,
    name: str,
    *,
    since: FeedMark | None,
    now: int,
    timeout: timedelta = timedelta(seconds=30),
) -> FeedUpdate:
    """Resolve feed ``name`` through IPNS, fetch what is new and verify it after ``since``."""
    canonical = canonical_name(name)
    record = current_record(client, canonical, timeout=timeout)
    target = record.value.removeprefix("/ipfs/")
    try:
        envelope = CID.from_text(target)
    except CodecError as exc:
        raise FeedError(f"feed {canonical}: its IPNS record points at {record.value}") from exc
    store = KuboBlockStore(client, offline=False, fetch_timeout=_FETCH_TIMEOUT)
    update = verify_feed(store, canonical, envelope, since=since, now=now)
    if record.sequence != update.head.height:
        raise FeedError(
            f"feed {canonical}: IPNS sequence {record.sequence} is not the head's height "
            f"{update.head.height}"
        )
    return update
