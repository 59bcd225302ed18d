"""A bulk first sync keeps checked nodes while the index still moves (``subscribe/_early.py``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboError, SchemaError
from ipfsbin.index._node import Node
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe._delta import Checked, Moved
from ipfsbin.subscribe.sync import SyncResult, sync_subscription
from ipfsbin.trust.state import RootPin
from tests.unit.subscribe.subscribe_helpers import (
    T0,
    MemoryFollower,
    PinSet,
    Publisher,
    all_nodes,
)


class _TreeBulk:
    """Every node under the tops, one level at a time, each told to ``checked`` once checked;
    ``fail_after`` nodes in, it raises as a node failing its check would."""

    def __init__(self, source: MemoryBlockStore, fail_after: int | None = None) -> None:
        self.tree = ProllyTree(source, cache_size=0)
        self.fail_after = fail_after
        self.threads: set[str] = set()

    def below(self, tops: Sequence[Node], *, checked: Checked | None = None) -> Moved:
        moved: list[CID] = []
        level = list(tops)
        while level and level[0].level > 0:
            level = [self.tree.child(n, i) for n in level for i in range(len(n.children))]
            for start in range(0, len(level), 16):
                batch = [n.cid for n in level[start : start + 16]]
                if self.fail_after is not None and len(moved) >= self.fail_after:
                    raise SchemaError(f"index node {batch[0]} fails its check")
                moved += batch
                if checked is not None:
                    checked(batch)
        return Moved(cids=tuple(moved), bytes=0)


class _ThreadedPins(PinSet):
    """A PinSet that notes which threads kept, and can fail once some blocks are kept."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__()
        self.fail_after = fail_after
        self.threads: set[str] = set()

    def keep(self, cids: Sequence[CID], *, label: str) -> None:
        if self.fail_after is not None and len(self.kept) >= self.fail_after:
            raise KuboError("pin/add: the node went away")
        self.threads.add(threading.current_thread().name)
        super().keep(cids, label=label)


def _first_sync(
    tmp_path: Path, pub: Publisher, bulk: _TreeBulk, pins: PinSet
) -> tuple[MemoryFollower, SyncResult]:
    follower = MemoryFollower(
        tmp_path / "subs.sqlite", pub, RootPin(cid=pub.root.root_id), pub.root.cid
    )
    follower.pins = pins
    follower.records.records[pub.name] = pub.record(at=T0 + 60)
    result = sync_subscription(
        follower.state,
        pub.name,
        records=follower.records,
        store=follower.fetching,
        keeper=pins,
        local_store=follower.fetching.local,
        now=float(T0 + 60),
        workers=1,
        bulk=bulk,
    )
    return follower, result


def test_checked_nodes_are_kept_while_the_index_moves(tmp_path: Path) -> None:
    pub = Publisher(3000)
    pins = _ThreadedPins()
    follower, result = _first_sync(tmp_path, pub, _TreeBulk(pub.store), pins)
    assert result.outcome == "accepted", result.error
    index = all_nodes(pub.tree, pub.index)
    assert index <= pins.kept
    assert "ipfsbin-keep" in pins.threads  # most nodes were kept by the keeping thread
    held = follower.state.held(pub.name)
    assert held == pins.kept and not follower.state.pending(pub.name)


def test_a_sync_failing_half_way_lets_go_of_what_it_kept_early(tmp_path: Path) -> None:
    pub = Publisher(3000)
    pins = _ThreadedPins()
    follower, result = _first_sync(tmp_path, pub, _TreeBulk(pub.store, fail_after=40), pins)
    assert result.outcome == "failed" and "fails its check" in (result.error or "")
    assert pins.released  # some nodes had been kept before the bad one
    assert not pins.kept
    assert not follower.state.pending(pub.name) and not follower.state.held(pub.name)
    assert follower.state.get(pub.name).head is None


def test_a_keeper_failing_while_the_index_moves_fails_the_sync(tmp_path: Path) -> None:
    pub = Publisher(3000)
    pins = _ThreadedPins(fail_after=30)
    follower, result = _first_sync(tmp_path, pub, _TreeBulk(pub.store), pins)
    assert result.outcome == "failed" and "went away" in (result.error or ""), result.error
    assert not pins.kept
    assert not follower.state.pending(pub.name) and not follower.state.held(pub.name)
