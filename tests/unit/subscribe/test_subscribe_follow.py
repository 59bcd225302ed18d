"""The sync state machine over memory: accept good heads, refuse bad ones, keep the good head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from subscribe_helpers import (
    DAY,
    MAINTAINER,
    PUBLISHER,
    STRANGER,
    T0,
    Fetching,
    PinSet,
    Publisher,
    Records,
    all_nodes,
)

from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe import SubscriptionStore, SyncResult, sync_subscription
from ipfsbin.subscribe._delta import tree_delta
from ipfsbin.trust.state import RootPin


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.pub = Publisher(2000)
        self.records = Records()
        self.fetching = Fetching(self.pub.store)
        self.pins = PinSet()
        self.state = SubscriptionStore(tmp_path / "subs.sqlite")
        self.state.add(self.pub.name, RootPin(cid=self.pub.root.root_id), self.pub.root.cid, now=T0)

    def publish(self, record: bytes, name: str | None = None) -> None:
        self.records.records[name or self.pub.name] = record

    def sync(self, *, at: int, name: str | None = None, allow_stale: bool = False) -> SyncResult:
        return sync_subscription(
            self.state,
            name or self.pub.name,
            records=self.records,
            store=self.fetching,
            keeper=self.pins,
            local_store=self.fetching.local,
            allow_stale=allow_stale,
            now=float(at),
            workers=1,
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    w.publish(w.pub.record())
    first = w.sync(at=T0 + 60)
    assert first.outcome == "accepted", first.error
    yield w
    w.state.close()


def test_first_sync_fetches_and_keeps_the_whole_index(world: World) -> None:
    nodes = all_nodes(world.pub.tree, world.pub.index)
    sub = world.state.get(world.pub.name)
    assert sub.head == world.pub.head.commit_id
    assert sub.head_envelope == world.pub.head.cid
    assert sub.height == 1 and sub.index_root == world.pub.index and sub.error is None
    assert nodes <= world.pins.kept
    assert {world.pub.head.cid, world.pub.head.commit_id, world.pub.root.cid} <= world.pins.kept


def test_update_fetches_only_the_changed_nodes(world: World) -> None:
    old_nodes = all_nodes(world.pub.tree, world.pub.index)
    old_head = world.pub.head
    world.pub.update([5, 700, 1500], now=T0 + DAY)
    new_nodes = all_nodes(world.pub.tree, world.pub.index)
    world.publish(world.pub.record(at=T0 + DAY))
    before = world.fetching.fetched

    result = world.sync(at=T0 + DAY + 60)

    assert result.outcome == "accepted", result.error
    assert (result.previous_height, result.height) == (1, 2)
    assert result.index_blocks == len(new_nodes - old_nodes)
    assert result.blocks_fetched == result.index_blocks + 2
    assert world.fetching.fetched - before == result.blocks_fetched
    assert result.index_blocks < len(new_nodes) / 4
    # what the old head alone needed is let go, what the new head needs is kept
    assert new_nodes <= world.pins.kept
    assert not (old_nodes - new_nodes) & world.pins.kept
    assert old_head.cid not in world.pins.kept
    assert world.state.get(world.pub.name).height == 2


def test_same_record_again_is_current_and_fetches_nothing(world: World) -> None:
    before = world.fetching.fetched
    result = world.sync(at=T0 + 120)
    assert result.outcome == "current" and result.height == 1
    assert world.fetching.fetched == before
    assert world.state.get(world.pub.name).checked_at == T0 + 120


def assert_refused(world: World, result: SyncResult, kind: str, fragment: str) -> None:
    assert result.outcome == "refused"
    assert result.error is not None and result.error.startswith(kind + ":"), result.error
    assert fragment in result.error
    sub = world.state.get(world.pub.name)
    assert sub.head == world.pub.head.commit_id and sub.height == world.pub.head.height
    assert sub.error == result.error and sub.error_at is not None


def test_forged_record_is_refused_and_the_head_kept(world: World) -> None:
    bad = world.pub.update([1], now=T0 + DAY, advance=False)
    world.publish(world.pub.record(bad, key=STRANGER, at=T0 + DAY))

    result = world.sync(at=T0 + DAY + 60)

    assert_refused(world, result, "IpnsError", "does not verify under the key")


def test_replayed_older_record_is_refused(world: World) -> None:
    first_record = world.pub.record()
    world.pub.update([1], now=T0 + DAY)
    world.publish(world.pub.record(at=T0 + DAY))
    assert world.sync(at=T0 + DAY + 60).outcome == "accepted"
    world.publish(first_record)

    result = world.sync(at=T0 + DAY + 120)

    assert_refused(world, result, "RollbackError", "sequence 1, below the accepted height 2")


def test_commit_signed_by_an_unknown_key_is_refused(world: World) -> None:
    bad = world.pub.update([1], now=T0 + DAY, signers=[STRANGER], advance=False)
    world.publish(world.pub.record(bad, at=T0 + DAY))

    result = world.sync(at=T0 + DAY + 60)

    assert_refused(world, result, "ThresholdError", "signed by 0 of 1 required")


def test_expired_commit_is_refused_unless_stale_is_allowed(world: World) -> None:
    stale = world.pub.update([1], now=T0 + DAY, expires=T0 + DAY + 10, advance=False)
    world.publish(world.pub.record(stale, at=T0 + DAY))

    result = world.sync(at=T0 + 2 * DAY)
    assert_refused(world, result, "ExpiredError", "expired at")

    allowed = world.sync(at=T0 + 2 * DAY, allow_stale=True)
    assert allowed.outcome == "accepted" and allowed.height == 2
    assert world.state.get(world.pub.name).error is None


def test_record_sequence_must_match_the_commit_height(world: World) -> None:
    nxt = world.pub.update([1], now=T0 + DAY, advance=False)
    world.publish(world.pub.record(nxt, sequence=99, at=T0 + DAY))

    result = world.sync(at=T0 + DAY + 60)

    assert_refused(world, result, "IpnsError", "sequence 99 but points to commit")


def test_expired_record_is_refused(world: World) -> None:
    result = world.sync(at=T0 + 3 * DAY)
    assert_refused(world, result, "IpnsError", "expired at")


def test_name_outside_the_publishers_role_is_refused(world: World, tmp_path: Path) -> None:
    world.state.add(
        STRANGER.key_id, RootPin(cid=world.pub.root.root_id), world.pub.root.cid, now=T0
    )
    world.publish(world.pub.record(key=STRANGER), STRANGER.key_id)

    result = world.sync(at=T0 + 60, name=STRANGER.key_id)

    assert result.outcome == "refused"
    assert result.error is not None and "not in the publishers role" in result.error
    assert world.state.get(STRANGER.key_id).head is None


def test_unreachable_block_fails_and_keeps_the_head(world: World) -> None:
    nxt = world.pub.update([1], now=T0 + DAY, advance=False)
    world.publish(world.pub.record(nxt, at=T0 + DAY))
    world.fetching.remote = MemoryBlockStore()  # the publisher went away

    result = world.sync(at=T0 + DAY + 60)

    assert result.outcome == "failed"
    assert result.error is not None and result.error.startswith("BlockNotFoundError:")
    assert world.state.get(world.pub.name).height == 1


def test_pinned_maintainer_key_is_enough_to_follow(tmp_path: Path) -> None:
    pub = Publisher(50)
    state = SubscriptionStore(tmp_path / "s.sqlite")
    state.add(pub.name, RootPin(key_id=MAINTAINER.key_id), pub.root.cid, now=T0)
    records = Records()
    records.records[pub.name] = pub.record()
    fetching = Fetching(pub.store)
    result = sync_subscription(
        state, pub.name, records=records, store=fetching, keeper=PinSet(), now=T0 + 1.0
    )
    assert result.outcome == "accepted" and result.height == 1
    state.close()


def test_root_pinned_to_another_key_is_refused(tmp_path: Path) -> None:
    pub = Publisher(50)
    state = SubscriptionStore(tmp_path / "s.sqlite")
    state.add(pub.name, RootPin(key_id=PUBLISHER.key_id), pub.root.cid, now=T0)
    records = Records()
    records.records[pub.name] = pub.record()
    result = sync_subscription(
        state, pub.name, records=records, store=Fetching(pub.store), keeper=PinSet(), now=T0 + 1.0
    )
    assert result.outcome == "refused"
    assert result.error is not None and "RotationError" in result.error
    assert "not signed by the pinned maintainer key" in result.error
    state.close()


def test_delta_of_disjoint_trees_covers_both_sides() -> None:
    pub = Publisher(300)
    other = Publisher(10)
    store = MemoryBlockStore()
    for cid in pub.store:
        store.put_many([(cid, pub.store.get(cid))])
    for cid in other.store:
        store.put_many([(cid, other.store.get(cid))])
    delta = tree_delta(store, other.index, pub.index, workers=4)
    assert set(delta.added) == all_nodes(other.tree, other.index)
    assert set(delta.removed) == all_nodes(pub.tree, pub.index)
    assert tree_delta(store, pub.index, pub.index).added == ()


def test_follow_forever_runs_rounds_until_stopped() -> None:
    import threading

    from ipfsbin.subscribe import follow_forever

    stop = threading.Event()
    rounds: list[int] = []

    def one_round() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 3:
            stop.set()

    assert follow_forever(one_round, interval=0.01, stop=stop) == 3
    with pytest.raises(ValueError, match="interval must be positive"):
        follow_forever(one_round, interval=0, stop=stop)
