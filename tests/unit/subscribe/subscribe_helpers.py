"""An index publisher and a follower in memory: fixed keys, fixed times, counted fetches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.index import IndexEntry, ProllyTree
from ipfsbin.index.changeset import put_changeset, split_changes
from ipfsbin.ipns import create_record
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe import SubscriptionStore, SyncResult, sync_subscription
from ipfsbin.trust.commit import SignedCommit, make_commit, put_commit, sign_commit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot, make_root, put_root, sign_root
from ipfsbin.trust.state import RootPin

MAINTAINER, PUBLISHER, STRANGER = (SigningKey.from_seed(bytes([i + 40]) * 32) for i in range(3))
SECOND_PUBLISHER = SigningKey.from_seed(bytes([50]) * 32)
T0 = 1767225600  # 2026-01-01T00:00:00Z
DAY = 86400


def key_of(i: int) -> str:
    return f"amd64-k8/dev-libs/pkg{i:06d}/1.{i % 7}/d{i:08x}"


def entry(i: int, version: int = 0) -> dagcbor.Value:
    manifest = cid_for(DAG_CBOR, dagcbor.encode({"manifest": i, "v": version}))
    return IndexEntry.new(manifest).to_dag()


def all_nodes(tree: ProllyTree, root: CID) -> set[CID]:
    seen: set[CID] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        seen.add(cid)
        stack.extend(tree.load(cid).children)
    return seen


class Publisher:
    """Maintains an index, commits and IPNS records in its own memory store."""

    budget = 4096
    """Changeset part size: small, so that tests see batches split into several parts."""

    def __init__(
        self,
        size: int,
        *,
        now: int = T0,
        changesets: bool = False,
        publishers: Sequence[SigningKey] = (PUBLISHER,),
    ) -> None:
        self.changesets = changesets
        self.store = MemoryBlockStore()
        self.tree = ProllyTree(self.store)
        self.root: SignedRoot = sign_root(
            make_root(
                expires=T0 + 365 * DAY,
                maintainers=[MAINTAINER.public_key],
                publishers=[k.public_key for k in publishers],
            ),
            MAINTAINER,
        )
        put_root(self.store, self.root)
        self.listed_roots: tuple[CID, ...] = ()
        """Root envelopes the commit envelopes list (none unless a test sets them)."""
        self.entries = {key_of(i): entry(i) for i in range(size)}
        self.index = self.tree.build(sorted(self.entries.items()))
        self.head: SignedCommit = self._commit(self.index, now=now)
        self.now = now

    @property
    def name(self) -> str:
        return PUBLISHER.key_id

    def _commit(
        self,
        index: CID,
        *,
        now: int,
        parents: Sequence[SignedCommit] = (),
        signers: Sequence[SigningKey] = (MAINTAINER,),
        expires: int | None = None,
        changes: Sequence[CID] = (),
    ) -> SignedCommit:
        commit = make_commit(
            index=index,
            root=self.root,
            time=now,
            parents=parents,
            expires=expires,
            changes=changes,
        )
        signed = sign_commit(commit, *signers, roots=self.listed_roots)
        put_commit(self.store, signed)
        return signed

    def update(
        self,
        changed: Sequence[int],
        *,
        now: int,
        signers: Sequence[SigningKey] = (MAINTAINER,),
        expires: int | None = None,
        advance: bool = True,
        deleted: Sequence[int] = (),
        changeset: dict[str, dagcbor.Value] | None = None,
        base: CID | None = None,
    ) -> SignedCommit:
        """A commit on the head, entries ``changed`` rewritten; moves the head if ``advance``.

        With ``changesets`` on, the commit links the batch as a changeset on
        the head's index, or ``changeset`` (upserts) on ``base`` when given (a
        wrong one, for tests).
        """
        upserts = {key_of(i): entry(i, version=now) for i in changed}
        removed = [key_of(i) for i in deleted]
        index = self.tree.mutate(self.index, upserts, removed)
        changes: tuple[CID, ...] = ()
        if self.changesets:
            parts = split_changes(
                base or self.index,
                upserts if changeset is None else changeset,
                removed,
                budget=self.budget,
            )
            changes = put_changeset(self.store, parts)
        signed = self._commit(
            index, now=now, parents=[self.head], signers=signers, expires=expires, changes=changes
        )
        if advance:
            self.entries.update(upserts)
            for key in removed:
                self.entries.pop(key, None)
            self.index = index
            self.head = signed
        return signed

    def record(
        self,
        head: SignedCommit | None = None,
        *,
        key: SigningKey = PUBLISHER,
        sequence: int | None = None,
        at: int | None = None,
        lifetime: timedelta = timedelta(hours=48),
    ) -> bytes:
        target = head or self.head
        moment = datetime.fromtimestamp(self.now if at is None else at, tz=UTC)
        return create_record(
            key,
            target.cid,
            target.height if sequence is None else sequence,
            lifetime=lifetime,
            now=moment,
        )


class Records:
    """A record source that serves whatever record was set last for each name."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}

    def fetch_record(self, name: str) -> bytes:
        from ipfsbin.errors import IpnsError

        try:
            return self.records[name]
        except KeyError:
            raise IpnsError(f"no IPNS record found for {name}") from None


class Fetching:
    """The follower's view: its own blocks, and the publisher's on demand (counted)."""

    def __init__(self, remote: MemoryBlockStore) -> None:
        self.remote = remote
        self.local = MemoryBlockStore()
        self.fetched = 0

    def get(self, cid: CID) -> bytes:
        if self.local.has(cid):
            return self.local.get(cid)
        data = self.remote.get(cid)
        self.fetched += 1
        self.local.put_many([(cid, data)])
        return data

    def put(self, data: bytes, codec: int = DAG_CBOR) -> CID:
        return self.local.put(data, codec)

    def put_many(self, blocks: Iterable[tuple[CID, bytes]]) -> None:
        self.local.put_many(blocks)

    def has(self, cid: CID) -> bool:
        return self.local.has(cid)


class PinSet:
    """A keeper that remembers what is kept (one pin per CID, as in Kubo) and what was let go."""

    def __init__(self) -> None:
        self.kept: set[CID] = set()
        self.released: list[CID] = []

    def keep(self, cids: Sequence[CID], *, label: str) -> None:
        self.kept.update(cids)

    def release(self, cids: Sequence[CID], *, label: str) -> None:
        self.released.extend(cids)
        self.kept.difference_update(cids)


class MemoryFollower:
    """One subscription to ``pub`` over memory: a state file, records, counted fetches, pins.

    Each :meth:`sync` first has the publisher sign a fresh record for its
    current head, as whoever holds the IPNS key can at any time.
    """

    def __init__(
        self,
        path: Path,
        pub: Publisher,
        pin: RootPin,
        root: CID | None = None,
        *,
        records: Records | None = None,
        fetching: Fetching | None = None,
    ) -> None:
        self.pub = pub
        self.records = Records() if records is None else records
        self.fetching = Fetching(pub.store) if fetching is None else fetching
        self.pins = PinSet()
        self.state = SubscriptionStore(path)
        self.state.add(pub.name, pin, root, now=T0)

    def sync(self, at: int, *, allow_stale: bool = False) -> SyncResult:
        self.records.records[self.pub.name] = self.pub.record(at=at)
        return sync_subscription(
            self.state,
            self.pub.name,
            records=self.records,
            store=self.fetching,
            keeper=self.pins,
            local_store=self.fetching.local,
            allow_stale=allow_stale,
            now=float(at),
            workers=1,
        )
