"""Following by changesets: only commits and changesets move; anything doubtful falls back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from subscribe_helpers import (
    DAY,
    T0,
    Fetching,
    PinSet,
    Publisher,
    Records,
    all_nodes,
    entry,
    key_of,
)

from ipfsbin.codec.cid import CID
from ipfsbin.subscribe import SubscriptionStore, SyncResult, sync_subscription
from ipfsbin.trust.state import RootPin


class Counting(Fetching):
    """Remembers which blocks came from the publisher."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fetched_cids: list[CID] = []

    def get(self, cid: CID) -> bytes:
        if not self.local.has(cid):
            self.fetched_cids.append(cid)
        return super().get(cid)


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.pub = Publisher(2000, changesets=True)
        self.records = Records()
        self.fetching = Counting(self.pub.store)
        self.pins = PinSet()
        self.state = SubscriptionStore(tmp_path / "subs.sqlite")
        self.state.add(self.pub.name, RootPin(cid=self.pub.root.root_id), self.pub.root.cid, now=T0)

    def sync(self, at: int, *, changesets: bool = True) -> SyncResult:
        self.records.records[self.pub.name] = self.pub.record(at=at - 60)
        return sync_subscription(
            self.state,
            self.pub.name,
            records=self.records,
            store=self.fetching,
            keeper=self.pins,
            local_store=self.fetching.local,
            now=float(at),
            workers=2,
            changesets=changesets,
        )

    def fetched_since(self, mark: int) -> set[CID]:
        return set(self.fetching.fetched_cids[mark:])

    def assert_at_head(self) -> None:
        sub = self.state.get(self.pub.name)
        assert sub.head == self.pub.head.commit_id and sub.index_root == self.pub.index
        nodes = all_nodes(self.pub.tree, self.pub.index)
        assert nodes <= self.pins.kept
        assert all(self.fetching.local.has(c) for c in nodes)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    first = w.sync(at=T0 + 60)
    assert first.outcome == "accepted" and first.via == "nodes" and first.fallback is None
    yield w
    w.state.close()


def test_update_moves_only_the_commit_and_its_changeset(world: World) -> None:
    old_nodes = all_nodes(world.pub.tree, world.pub.index)
    mark = len(world.fetching.fetched_cids)
    head = world.pub.update(range(0, 2000, 40), now=T0 + DAY, deleted=[7, 1999])
    assert len(head.commit.changes) > 1  # the helper's small parts: several blocks

    result = world.sync(at=T0 + DAY + 60)

    assert result.outcome == "accepted", result.error
    assert (result.via, result.fallback, result.changesets) == ("changeset", None, 1)
    assert world.fetched_since(mark) == {head.cid, head.commit_id, *head.commit.changes}
    assert result.blocks_fetched == 2 + len(head.commit.changes) == 2 + result.changeset_blocks
    new_nodes = all_nodes(world.pub.tree, world.pub.index)
    assert result.index_blocks == result.blocks_written == len(new_nodes - old_nodes)
    assert result.bytes_written == sum(len(world.pub.store.get(c)) for c in new_nodes - old_nodes)
    assert result.to_json()["via"] == "changeset"
    world.assert_at_head()
    assert not (old_nodes - new_nodes) & world.pins.kept


def test_forged_changeset_value_falls_back_to_the_verified_head(world: World) -> None:
    wrong = {key_of(5): entry(5, version=12345)}  # the index holds another value
    head = world.pub.update([5], now=T0 + DAY, changeset=wrong)
    mark = len(world.fetching.fetched_cids)

    result = world.sync(at=T0 + DAY + 60)

    assert result.outcome == "accepted" and result.via == "nodes", result.error
    assert result.fallback is not None and "the commit says" in result.fallback
    assert result.blocks_written == 0
    # the nodes came from the publisher after all
    new_nodes = all_nodes(world.pub.tree, head.commit.index)
    assert world.fetched_since(mark) >= {head.cid, *head.commit.changes}
    assert result.index_blocks > 0 and set(world.fetching.fetched_cids[mark:]) & new_nodes
    world.assert_at_head()


def test_changeset_on_another_base_falls_back(world: World) -> None:
    other = world.pub.tree.mutate(world.pub.index, {key_of(1): entry(1, version=9)})
    world.pub.update([3], now=T0 + DAY, base=other)

    result = world.sync(at=T0 + DAY + 60)

    assert result.outcome == "accepted" and result.via == "nodes", result.error
    assert result.fallback is not None and f"applies to index {other}" in result.fallback
    world.assert_at_head()


def test_commit_without_changes_falls_back(world: World) -> None:
    world.pub.changesets = False
    head = world.pub.update([3], now=T0 + DAY)

    result = world.sync(at=T0 + DAY + 60)

    assert result.via == "nodes" and result.fallback == f"commit {head.commit_id} lists no changes"
    world.assert_at_head()


def test_several_commits_behind_replays_each_changeset(world: World) -> None:
    mark = len(world.fetching.fetched_cids)
    heads = [
        world.pub.update([i, i + 500], now=T0 + DAY + i, deleted=[i + 1]) for i in (10, 20, 30)
    ]

    result = world.sync(at=T0 + DAY + 120)

    assert result.outcome == "accepted" and result.via == "changeset", result.fallback
    assert (result.previous_height, result.height, result.changesets) == (1, 4, 3)
    expected = {heads[-1].cid} | {h.commit_id for h in heads}
    expected |= {c for h in heads for c in h.commit.changes}
    assert world.fetched_since(mark) == expected
    world.assert_at_head()


def test_gap_without_changes_in_the_middle_falls_back(world: World) -> None:
    world.pub.update([10], now=T0 + DAY)
    world.pub.changesets = False
    middle = world.pub.update([20], now=T0 + DAY + 1)
    world.pub.changesets = True
    world.pub.update([30], now=T0 + DAY + 2)

    result = world.sync(at=T0 + DAY + 120)

    assert result.via == "nodes" and result.height == 4
    assert result.fallback == f"commit {middle.commit_id} lists no changes"
    world.assert_at_head()


def test_missing_old_tree_falls_back(world: World) -> None:
    world.fetching.local = type(world.fetching.local)()  # the local blocks were collected
    world.pub.update([10], now=T0 + DAY)

    result = world.sync(at=T0 + DAY + 60)

    assert result.outcome == "accepted" and result.via == "nodes"
    assert result.fallback == "the accepted index is not held locally"
    world.assert_at_head()


def test_changesets_can_be_switched_off(world: World) -> None:
    head = world.pub.update([10], now=T0 + DAY)
    mark = len(world.fetching.fetched_cids)

    result = world.sync(at=T0 + DAY + 60, changesets=False)

    assert (result.via, result.fallback, result.blocks_written) == ("nodes", None, 0)
    assert not set(head.commit.changes) & world.fetched_since(mark)
    assert result.blocks_fetched == result.index_blocks + 2
    world.assert_at_head()


def test_unreachable_changeset_part_falls_back(world: World) -> None:
    head = world.pub.update([10], now=T0 + DAY)
    (part,) = head.commit.changes
    del world.pub.store._blocks[part]  # the publisher lost it

    result = world.sync(at=T0 + DAY + 60)

    assert result.outcome == "accepted" and result.via == "nodes"
    assert result.fallback is not None and result.fallback.startswith("BlockNotFoundError:")
    world.assert_at_head()
