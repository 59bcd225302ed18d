"""One pin account for a workspace and a follower on the same real Kubo node."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import FOLLOW_HOLDER, PinLedger
from tests.integration.pin_helpers import kept

pytestmark = [pytest.mark.integration]

HEAD = "ipfsbin index default head"


@pytest.fixture
def ledger(kubo_client: KuboClient, tmp_path: Path) -> PinLedger:
    return PinLedger(kubo_client, tmp_path / "pins.sqlite")


def dag(client: KuboClient, label: str) -> tuple[CID, CID]:
    """A two-block DAG: (top, leaf)."""
    leaf = client.block_put(dagcbor.encode({"leaf": label}), codec=DAG_CBOR)
    top = client.block_put(dagcbor.encode({"top": label, "l": leaf}), codec=DAG_CBOR)
    return top, leaf


def pin_of(client: KuboClient, cid: CID) -> str | None:
    for kind in ("recursive", "direct"):
        if client.is_pinned(cid, pin_type=kind):
            return kind
    return None


def test_a_follower_and_a_workspace_hold_the_same_envelope(
    ledger: PinLedger, kubo_client: KuboClient
) -> None:
    top, leaf = dag(kubo_client, "shared")
    ledger.hold(HEAD, [top], recursive=True)
    # Kubo alone would refuse a direct pin here ("already pinned recursively")
    ledger.hold(FOLLOW_HOLDER, [top, leaf], recursive=False)
    assert pin_of(kubo_client, top) == "recursive"
    assert {top.multihash, leaf.multihash} <= kept(kubo_client)
    # the workspace lets go: the follower's holder DAG keeps both
    ledger.release_recursive(top)
    assert pin_of(kubo_client, top) is None
    assert {top.multihash, leaf.multihash} <= kept(kubo_client)
    assert ledger.release(FOLLOW_HOLDER, [top, leaf]) == [top, leaf]
    assert not {top.multihash, leaf.multihash} & kept(kubo_client)


def test_a_workspace_moving_its_head_keeps_the_old_one_the_follower_holds(
    ledger: PinLedger, kubo_client: KuboClient
) -> None:
    old, _ = dag(kubo_client, "old")
    new, _ = dag(kubo_client, "new")
    ledger.hold(FOLLOW_HOLDER, [old], recursive=False)
    ledger.move(HEAD, None, old)
    assert pin_of(kubo_client, old) == "recursive"
    ledger.move(HEAD, old, new)
    assert pin_of(kubo_client, new) == "recursive"
    assert old.multihash in kept(kubo_client)  # Kubo's pin/update would have dropped it
    # the follower's release of a block still pinned recursively changes nothing
    assert ledger.release(FOLLOW_HOLDER, [new]) == []
    assert pin_of(kubo_client, new) == "recursive"
    assert ledger.release(FOLLOW_HOLDER, [old]) == [old]
    assert old.multihash not in kept(kubo_client)
    # nobody else needs the head: the move is Kubo's pin/update
    newer, _ = dag(kubo_client, "newer")
    ledger.move(HEAD, new, newer)
    assert (pin_of(kubo_client, new), pin_of(kubo_client, newer)) == (None, "recursive")


def test_pins_made_outside_ipfsbin_are_left_alone(
    ledger: PinLedger, kubo_client: KuboClient
) -> None:
    top, _ = dag(kubo_client, "theirs")
    kubo_client.pin_add([top], recursive=True, name="someone else")
    ledger.hold(FOLLOW_HOLDER, [top], recursive=False)
    ledger.release(FOLLOW_HOLDER, [top])
    ledger.release_recursive(top)
    assert pin_of(kubo_client, top) == "recursive"


def test_the_follower_holds_by_one_recursive_pin_that_moves(
    ledger: PinLedger, kubo_client: KuboClient
) -> None:
    blocks = [dag(kubo_client, f"many {i}")[1] for i in range(5)]
    ledger.hold(FOLLOW_HOLDER, blocks[:3], recursive=False)
    first = ledger.holder_root(FOLLOW_HOLDER)
    assert first is not None and pin_of(kubo_client, first) == "recursive"
    assert all(pin_of(kubo_client, c) is None for c in blocks)  # no pin of their own
    ledger.hold(FOLLOW_HOLDER, blocks[3:], recursive=False)
    ledger.release(FOLLOW_HOLDER, blocks[:1])
    root = ledger.holder_root(FOLLOW_HOLDER)
    assert root is not None and pin_of(kubo_client, first) is None
    assert [c.multihash in kept(kubo_client) for c in blocks] == [False] + [True] * 4


def test_a_root_left_by_a_killed_change_is_unpinned_by_the_next(
    ledger: PinLedger, kubo_client: KuboClient, tmp_path: Path
) -> None:
    a, b = (dag(kubo_client, f"killed {i}")[1] for i in range(2))
    ledger.hold(FOLLOW_HOLDER, [a], recursive=False)
    current = ledger.holder_root(FOLLOW_HOLDER)
    # a change listed and pinned its root, then died before marking it current
    from ipfsbin.kubo.holder import put_holder  # noqa: PLC0415

    orphan = put_holder(kubo_client, [a, b])
    kubo_client.pin_add([orphan], recursive=True, name=FOLLOW_HOLDER)
    with ledger._write() as db:
        db.execute("INSERT INTO roots (holder, cid, current) VALUES (?, ?, 0)",
                    (FOLLOW_HOLDER, str(orphan)))  # fmt: skip
    assert ledger.holder_root(FOLLOW_HOLDER) == current
    ledger.release(FOLLOW_HOLDER, [a])
    assert pin_of(kubo_client, orphan) is None and pin_of(kubo_client, current) is None  # type: ignore[arg-type]
    assert not {a.multihash, b.multihash} & kept(kubo_client)


def test_direct_pins_of_an_earlier_follower_are_released_once_held(
    kubo_client: KuboClient, tmp_path: Path
) -> None:
    old, other = (dag(kubo_client, f"legacy {i}")[1] for i in range(2))
    kubo_client.pin_add([old, other], recursive=False, name=FOLLOW_HOLDER)
    ledger = PinLedger(kubo_client, tmp_path / "upgraded.sqlite")
    ledger.hold("ipfsbin:keep", [other], recursive=False)  # another holder's direct need
    ledger.hold(FOLLOW_HOLDER, [old, other], recursive=False)
    assert pin_of(kubo_client, old) is None and old.multihash in kept(kubo_client)
    assert pin_of(kubo_client, other) == "direct"
