"""A builder's feed over a memory store: append, idempotence, and followers' checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ipfsbin.builder.feed import Feed
from ipfsbin.codec.cid import CID
from ipfsbin.errors import FeedError, HistoryError, RollbackError
from ipfsbin.index.changeset import put_changeset, split_changes
from ipfsbin.index.keys import index_key
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.kubo.pins import NoPins
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.trust.commit import make_commit, put_commit, sign_commit
from ipfsbin.trust.feed import FeedMark, feed_key, parse_feed_key, verify_feed
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import make_root, put_root, sign_root
from ipfsbin.trust.signing import public_key_of
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, BUILDER_Y, T0, publish

SCHEMA = Path(__file__).resolve().parents[3] / "schema" / "feed.md"


def _feed(store: MemoryBlockStore, tmp_path: Path, key: SigningKey = BUILDER_X) -> Feed:
    return Feed(key, store, NoPins(), tmp_path / f"{key.key_id}.sqlite")


def _attestation(store: MemoryBlockStore, cpv: str, data: bytes, key: SigningKey) -> CID:
    published = publish(store, cpv, data, key)
    assert published.attestation is not None
    return published.attestation.cid


def test_worked_example_key() -> None:
    platform = CID.from_text("bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmqqme5yje")
    descriptor = CID.from_text("bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    statement = CID.from_text("bafyreibvjvcv745gig4mvqotsuftxlmtwqqhnzlrdxu6hn4thxnnk2wgp4")
    key = feed_key(index_key(platform, "dev-libs/foo-1.0", descriptor), statement)
    example = re.search(r"is stored under\n\n```\n(.+)\n```", SCHEMA.read_text())
    assert example is not None
    assert key == example.group(1)
    parsed, digest = parse_feed_key(key)
    assert parsed.cpv == "dev-libs/foo-1.0"
    assert len(digest) == 26


def test_append_creates_the_feed_then_adds_in_one_commit(tmp_path: Path) -> None:
    store = MemoryBlockStore()
    a = _attestation(store, "dev-libs/foo-1.0", b"foo build", BUILDER_X)
    b = _attestation(store, "dev-libs/bar-2.0", b"bar build", BUILDER_X)
    with _feed(store, tmp_path) as feed:
        assert feed.head() is None
        head = feed.append([a, b], now=T0)
        assert head.height == 2
        assert head.entries == 2
        assert [e.cpv for e in head.added] == sorted(["dev-libs/foo-1.0", "dev-libs/bar-2.0"])
        again = feed.append([a, b], now=T0 + 1)
        assert again.envelope == head.envelope
        assert again.added == ()
        update = verify_feed(store, BUILDER_X.key_id, head.envelope, since=None, now=T0 + 2)
        assert {e.attestation.cid for e in update.added} == {a, b}


def test_a_rebuild_with_other_bytes_is_a_second_entry(tmp_path: Path) -> None:
    store = MemoryBlockStore()
    first = _attestation(store, "dev-libs/foo-1.0", b"one build", BUILDER_X)
    second = _attestation(store, "dev-libs/foo-1.0", b"another build", BUILDER_X)
    with _feed(store, tmp_path) as feed:
        feed.append([first], now=T0)
        head = feed.append([second], now=T0 + 1)
    assert head.height == 3
    assert head.entries == 2
    (added,) = head.added
    assert added.attestation.cid == second


def test_append_refuses_another_builders_attestation(tmp_path: Path) -> None:
    store = MemoryBlockStore()
    foreign = _attestation(store, "dev-libs/foo-1.0", b"foo build", BUILDER_Y)
    with _feed(store, tmp_path) as feed, pytest.raises(FeedError, match="not validly signed"):
        feed.append([foreign], now=T0)
    with _feed(store, tmp_path) as feed:
        assert feed.head() is None


def test_follower_accepts_newer_heads_after_its_mark(tmp_path: Path) -> None:
    store = MemoryBlockStore()
    with _feed(store, tmp_path) as feed:
        first = feed.append([_attestation(store, "dev-libs/foo-1.0", b"a", BUILDER_X)], now=T0)
        mark = verify_feed(store, BUILDER_X.key_id, first.envelope, since=None, now=T0).mark
        second = feed.append([_attestation(store, "dev-libs/foo-2.0", b"b", BUILDER_X)], now=T0)
    update = verify_feed(store, BUILDER_X.key_id, second.envelope, since=mark, now=T0)
    assert [e.cpv for e in update.added] == ["dev-libs/foo-2.0"]
    with pytest.raises(RollbackError):
        verify_feed(store, BUILDER_X.key_id, first.envelope, since=update.mark, now=T0)


def _forge_next(
    store: MemoryBlockStore,
    feed: Feed,
    upserts: dict[str, object],
    deletes: tuple[str, ...] = (),
) -> CID:
    """A commit on the feed's head, signed by its key, that changes the index freely."""
    head, root = feed.head_commit(), feed.root()
    assert head is not None and root is not None
    tree = ProllyTree(store)
    index = tree.mutate(head.commit.index, upserts, deletes)  # type: ignore[arg-type]
    changes = put_changeset(store, split_changes(head.commit.index, upserts, deletes))  # type: ignore[arg-type]
    signed = sign_commit(
        make_commit(
            index=index,
            root=root,
            time=T0 + 5,
            parents=(head,),
            expires=root.root.expires,
            changes=changes,
        ),
        BUILDER_X,
        roots=(root.cid,),
    )
    return put_commit(store, signed)


def test_a_dropped_entry_refuses_the_feed(tmp_path: Path) -> None:
    store = MemoryBlockStore()
    with _feed(store, tmp_path) as feed:
        head = feed.append([_attestation(store, "dev-libs/foo-1.0", b"a", BUILDER_X)], now=T0)
        (entry,) = head.added
        dropped = _forge_next(store, feed, {}, (entry.key,))
    with pytest.raises(FeedError, match=r"dropped entry .*dev-libs/foo/1.0.* append-only"):
        verify_feed(store, BUILDER_X.key_id, dropped, since=None, now=T0 + 6)


def test_a_changed_entry_refuses_the_feed(tmp_path: Path) -> None:
    store = MemoryBlockStore()
    with _feed(store, tmp_path) as feed:
        head = feed.append([_attestation(store, "dev-libs/foo-1.0", b"a", BUILDER_X)], now=T0)
        (entry,) = head.added
        other = _attestation(store, "dev-libs/foo-1.0", b"other", BUILDER_X)
        value = entry.value.to_dag()
        value["attestations"] = [other]
        changed = _forge_next(store, feed, {entry.key: value})
    with pytest.raises(FeedError, match="changed entry"):
        verify_feed(store, BUILDER_X.key_id, changed, since=None, now=T0 + 6)


def test_a_rewritten_history_is_refused(tmp_path: Path) -> None:
    store = MemoryBlockStore()
    with _feed(store, tmp_path / "one") as feed:
        head = feed.append([_attestation(store, "dev-libs/foo-1.0", b"a", BUILDER_X)], now=T0)
        mark = FeedMark.of(feed.head_commit())  # type: ignore[arg-type]
    # the builder starts the feed over with other content and a higher height
    with _feed(store, tmp_path / "two") as fresh:
        fresh.append([_attestation(store, "dev-libs/bar-1.0", b"b", BUILDER_X)], now=T0 + 10)
        newer = fresh.append([_attestation(store, "dev-libs/baz-1.0", b"c", BUILDER_X)], now=T0)
    assert newer.height > head.height
    with pytest.raises(HistoryError, match="history was rewritten"):
        verify_feed(store, BUILDER_X.key_id, newer.envelope, since=mark, now=T0 + 20)


def test_an_index_is_not_a_feed() -> None:
    store = MemoryBlockStore()
    x, y = (public_key_of(k.key_id) for k in (BUILDER_X, BUILDER_Y))
    root = sign_root(make_root(expires=T0 + 1000, maintainers=[x], builders=[x, y]), BUILDER_X)
    put_root(store, root)
    first = make_commit(index=ProllyTree(store).empty(), root=root, time=T0)
    envelope = put_commit(store, sign_commit(first, BUILDER_X, roots=(root.cid,)))
    with pytest.raises(FeedError, match="not the feed root"):
        verify_feed(store, BUILDER_X.key_id, envelope, since=None, now=T0)
