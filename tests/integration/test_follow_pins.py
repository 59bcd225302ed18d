"""Two subscriptions to one index on one real Kubo node share pins, and unsubscribing cleans up.

The index, commits and roots are made in memory and copied into the node;
the IPNS records are served from memory too (one node has no DHT to put them
in). What runs for real is what this checks: the blocks Kubo's pins keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ipfsbin.codec.cid import CID
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import PinLedger
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe import (
    KuboKeeper,
    SubscriptionStore,
    SyncResult,
    sync_subscription,
    unsubscribe,
)
from ipfsbin.subscribe.keepers import PIN_NAME
from ipfsbin.trust.state import RootPin
from tests.integration.pin_helpers import follower_kept
from tests.unit.subscribe.subscribe_helpers import (
    DAY,
    PUBLISHER,
    SECOND_PUBLISHER,
    T0,
    Publisher,
    Records,
    all_nodes,
)

pytestmark = [pytest.mark.integration]

A, B = PUBLISHER.key_id, SECOND_PUBLISHER.key_id


def follower_pins(client: KuboClient) -> set[bytes]:
    """The multihash of every block the follower's pins keep."""
    return follower_kept(client)


def multihashes(cids: set[CID]) -> set[bytes]:
    return {c.multihash for c in cids}


def head_blocks(pub: Publisher) -> set[CID]:
    head = pub.head
    return all_nodes(pub.tree, pub.index) | {
        head.cid,
        head.commit_id,
        pub.root.cid,
        pub.root.root_id,
    }


class Host:
    def __init__(self, client: KuboClient, path: Path) -> None:
        self.client = client
        self.pub = Publisher(800, publishers=(PUBLISHER, SECOND_PUBLISHER))
        self.records = Records()
        self.local = KuboBlockStore(client, offline=True)
        self.state = SubscriptionStore(path)
        self.keeper = KuboKeeper(client, PinLedger(client, path.with_name("pins.sqlite")))
        for name in (A, B):
            self.state.add(name, RootPin(cid=self.pub.root.root_id), self.pub.root.cid, now=T0)

    def upload_and_publish(self, *names: str, at: int) -> None:
        self.local.put_many((c, self.pub.store.get(c)) for c in list(self.pub.store))
        for name in names:
            key = PUBLISHER if name == A else SECOND_PUBLISHER
            self.records.records[name] = self.pub.record(key=key, at=at)

    def sync(self, name: str, *, at: int) -> SyncResult:
        return sync_subscription(
            self.state,
            name,
            records=self.records,
            store=self.local,
            keeper=self.keeper,
            local_store=self.local,
            now=float(at),
        )


@pytest.fixture(scope="module")
def host(kubo_client: KuboClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    h = Host(kubo_client, tmp_path_factory.mktemp("pins") / "subs.sqlite")
    yield h
    h.state.close()


def test_two_subscriptions_share_one_pin_per_block(host: Host) -> None:
    host.upload_and_publish(A, B, at=T0)
    for name in (A, B):
        result = host.sync(name, at=T0 + 60)
        assert result.outcome == "accepted", result.error

    assert multihashes(head_blocks(host.pub)) <= follower_pins(host.client)
    # one recursive pin (the holder DAG) keeps them all, and no block has a pin of its own
    (holder,) = [p for p in host.client.pin_ls(pin_type="recursive") if p.name == PIN_NAME]
    assert not [p for p in host.client.pin_ls(pin_type="direct") if p.name == PIN_NAME]


def test_unsubscribing_one_keeps_the_blocks_the_other_holds(host: Host) -> None:
    first = head_blocks(host.pub)
    host.pub.update([7, 300, 790], now=T0 + DAY)
    host.upload_and_publish(A, at=T0 + DAY)
    result = host.sync(A, at=T0 + DAY + 60)
    assert result.outcome == "accepted", result.error
    assert result.blocks_released == 0  # B still holds every block A dropped
    only_a = head_blocks(host.pub) - first
    assert multihashes(first | only_a) <= follower_pins(host.client)

    released = unsubscribe(host.state, A, keepers=[host.keeper], local_store=host.local)

    assert set(released) == only_a
    pinned = follower_pins(host.client)
    assert multihashes(first) <= pinned and not multihashes(only_a) & pinned


def test_unsubscribing_the_last_leaves_no_follower_pin(host: Host) -> None:
    unsubscribe(host.state, B, keepers=[host.keeper], local_store=host.local)

    assert follower_pins(host.client) == set()
    assert not [p for p in host.client.pin_ls(pin_type="all") if p.name == PIN_NAME]
    assert host.state.all() == []
