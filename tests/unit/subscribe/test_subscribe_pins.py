"""Kept blocks are counted per subscription: shared nodes stay, crashes; unsubscribe tidies up."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from subscribe_helpers import (
    DAY,
    PUBLISHER,
    SECOND_PUBLISHER,
    T0,
    Fetching,
    PinSet,
    Publisher,
    Records,
    all_nodes,
)

from ipfsbin.codec.cid import CID
from ipfsbin.errors import BlockNotFoundError, SubscriptionError
from ipfsbin.store.sqlite import SqliteBlockStore
from ipfsbin.subscribe import SubscriptionStore, SyncResult, sync_subscription, unsubscribe
from ipfsbin.subscribe.keepers import BlockFileKeeper
from ipfsbin.trust.state import RootPin

A, B = PUBLISHER.key_id, SECOND_PUBLISHER.key_id


class Host:
    """One follower with two subscriptions (two publisher names) to the same index."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "subs.sqlite"
        self.pub = Publisher(1500, publishers=(PUBLISHER, SECOND_PUBLISHER))
        self.records = Records()
        self.fetching = Fetching(self.pub.store)
        self.pins = PinSet()
        self.state = SubscriptionStore(self.path)
        for name in (A, B):
            self.state.add(name, RootPin(cid=self.pub.root.root_id), self.pub.root.cid, now=T0)

    def publish(self, name: str, at: int) -> None:
        key = PUBLISHER if name == A else SECOND_PUBLISHER
        self.records.records[name] = self.pub.record(key=key, at=at)

    def sync(self, name: str, *, at: int) -> SyncResult:
        return sync_subscription(
            self.state,
            name,
            records=self.records,
            store=self.fetching,
            keeper=self.pins,
            local_store=self.fetching.local,
            now=float(at),
            workers=1,
        )

    def held_by_all(self) -> set[CID]:
        held: set[CID] = set()
        for sub in self.state.all():
            held |= self.state.held(sub.name)
        return held

    def head_blocks(self) -> set[CID]:
        head = self.pub.head
        blocks = all_nodes(self.pub.tree, self.pub.index)
        return blocks | {head.cid, head.commit_id, self.pub.root.cid, self.pub.root.root_id}


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    h = Host(tmp_path)
    for name in (A, B):
        h.publish(name, T0)
        result = h.sync(name, at=T0 + 60)
        assert result.outcome == "accepted", result.error
    yield h
    h.state.close()


def test_both_subscriptions_hold_the_same_blocks_once_pinned(host: Host) -> None:
    blocks = host.head_blocks()
    assert host.state.held(A) == host.state.held(B) == blocks
    assert host.pins.kept == blocks and host.pins.released == []


def test_moving_one_subscription_never_unpins_what_the_other_holds(host: Host) -> None:
    first = host.head_blocks()
    host.pub.update([3, 700, 1400], now=T0 + DAY)
    host.publish(A, T0 + DAY)

    result = host.sync(A, at=T0 + DAY + 60)

    assert result.outcome == "accepted", result.error
    assert result.blocks_released == 0  # every block A dropped is still B's
    assert host.state.held(B) == first and host.state.held(A) == host.head_blocks()
    assert first | host.head_blocks() == host.pins.kept == host.held_by_all()

    # B follows: now the blocks of the first head are nobody's and are let go
    host.publish(B, T0 + DAY)
    result = host.sync(B, at=T0 + DAY + 120)

    assert result.outcome == "accepted", result.error
    dropped = first - host.head_blocks()
    assert result.blocks_released == len(dropped) > 0
    assert set(host.pins.released) == dropped
    assert host.pins.kept == host.head_blocks() == host.held_by_all()


def test_unsubscribe_releases_only_what_no_other_subscription_holds(host: Host) -> None:
    first = host.head_blocks()
    host.pub.update([5, 900], now=T0 + DAY)
    host.publish(A, T0 + DAY)
    assert host.sync(A, at=T0 + DAY + 60).outcome == "accepted"
    only_a = host.head_blocks() - first

    released = unsubscribe(host.state, A, keepers=[host.pins], local_store=host.fetching.local)

    assert set(released) == only_a and only_a
    assert host.pins.kept == first == host.held_by_all()
    assert [s.name for s in host.state.all()] == [B]

    released = unsubscribe(host.state, B, keepers=[host.pins])

    assert set(released) == first
    assert host.pins.kept == set() and host.state.all() == []
    assert host.state.held(A) == host.state.held(B) == frozenset()


def test_unsubscribe_without_keepers_leaves_the_pins(host: Host) -> None:
    assert unsubscribe(host.state, A, keepers=[]) == []
    assert unsubscribe(host.state, B, keepers=[]) == []
    assert host.pins.kept == host.head_blocks() and host.pins.released == []
    with pytest.raises(SubscriptionError, match=f"not subscribed to {A}"):
        unsubscribe(host.state, A, keepers=[host.pins])


def test_a_sync_that_died_after_pinning_is_cleaned_up_by_the_next(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_head = host.pub.head
    first = host.head_blocks()
    host.pub.update([11, 600, 1200], now=T0 + DAY)
    host.publish(A, T0 + DAY)

    def power_cut(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    with monkeypatch.context() as patch:
        patch.setattr(host.state, "record_accepted", power_cut)
        with pytest.raises(RuntimeError, match="power cut"):
            host.sync(A, at=T0 + DAY + 60)

    fresh = host.head_blocks() - first
    assert fresh <= host.pins.kept  # pinned, but no head records them
    assert host.state.get(A).head == first_head.commit_id
    assert fresh <= host.state.pending(A)

    # the next sync of A (here: nothing new) lets go of them before anything else
    host.records.records[A] = host.pub.record(first_head, key=PUBLISHER, at=T0 + DAY)
    result = host.sync(A, at=T0 + DAY + 120)

    assert result.outcome == "current", result.error
    assert set(host.pins.released) == fresh
    assert host.pins.kept == first == host.held_by_all()
    assert host.state.pending(A) == frozenset()


def test_leftover_pending_blocks_another_subscription_holds_are_not_released(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    host.pub.update([11, 600], now=T0 + DAY)
    host.publish(A, T0 + DAY)
    host.publish(B, T0 + DAY)
    with monkeypatch.context() as patch:
        patch.setattr(host.state, "record_accepted", _raise_runtime)
        with pytest.raises(RuntimeError):
            host.sync(A, at=T0 + DAY + 60)
    # B takes the same head before A recovers: A's leftovers are B's blocks now
    assert host.sync(B, at=T0 + DAY + 90).outcome == "accepted"

    result = host.sync(A, at=T0 + DAY + 120)

    assert result.outcome == "accepted", result.error
    assert host.pins.kept == host.head_blocks() == host.held_by_all()
    assert not set(host.pins.released) & host.head_blocks()


def _raise_runtime(*args: object, **kwargs: object) -> None:
    raise RuntimeError("killed")


def test_a_refused_record_step_releases_its_pins_at_once(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = host.head_blocks()
    host.pub.update([42], now=T0 + DAY)
    host.publish(A, T0 + DAY)

    def moved(*args: object, **kwargs: object) -> None:
        raise SubscriptionError("the head moved while this sync ran")

    with monkeypatch.context() as patch:
        patch.setattr(host.state, "record_accepted", moved)
        result = host.sync(A, at=T0 + DAY + 60)

    assert result.outcome == "failed" and "head moved" in (result.error or "")
    assert host.pins.kept == first == host.held_by_all()
    assert host.state.pending(A) == frozenset()


def test_state_from_before_held_adopts_the_head_blocks(host: Host) -> None:
    host.state.close()
    with sqlite3.connect(host.path) as db:  # what a version-1 file looks like after upgrading
        db.execute("DELETE FROM held")
        db.execute("PRAGMA user_version = 1")
    db.close()
    host.state = SubscriptionStore(host.path)
    assert host.state.held(A) == frozenset()

    assert host.sync(A, at=T0 + 120).outcome == "current"

    assert host.state.held(A) == host.head_blocks()
    released = unsubscribe(host.state, B, keepers=[host.pins], local_store=host.fetching.local)
    assert released == []  # B's blocks were listed by unsubscribe itself, and A holds them all
    assert unsubscribe(host.state, A, keepers=[host.pins]) and host.pins.kept == set()


def test_newer_state_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "subs.sqlite"
    SubscriptionStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 6")
    db.close()
    with pytest.raises(SubscriptionError, match="schema version 6; this ipfsbin knows version 5"):
        SubscriptionStore(path)


def test_block_file_keeper_deletes_released_blocks(tmp_path: Path) -> None:
    local = SqliteBlockStore(tmp_path / "blocks.sqlite")
    kept = local.put(b"\xa1akx")
    other = local.put(b"\xa1aky")
    keeper = BlockFileKeeper(local)
    keeper.keep([kept, other], label=A)
    keeper.release([kept], label=A)
    assert not local.has(kept) and local.has(other)
    with pytest.raises(BlockNotFoundError, match="1 blocks to keep for .* are not in"):
        keeper.keep([kept], label=A)
    local.close()
