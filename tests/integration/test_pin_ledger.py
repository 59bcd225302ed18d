"""One pin account for a workspace and a follower on the same real Kubo node."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import FOLLOW_HOLDER, PinLedger

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
    # Kubo alone would refuse this ("already pinned recursively")
    ledger.hold(FOLLOW_HOLDER, [top, leaf], recursive=False)
    assert pin_of(kubo_client, top) == "recursive" and pin_of(kubo_client, leaf) == "direct"
    # the workspace lets go: the follower's need keeps a direct pin
    ledger.release_recursive(top)
    assert pin_of(kubo_client, top) == "direct"
    assert ledger.release(FOLLOW_HOLDER, [top, leaf]) == [top, leaf]
    assert pin_of(kubo_client, top) is None and pin_of(kubo_client, leaf) is None


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
    assert pin_of(kubo_client, old) == "direct"  # Kubo's pin/update would have dropped it
    # the follower's release of a block still pinned recursively changes nothing
    assert ledger.release(FOLLOW_HOLDER, [new]) == []
    assert pin_of(kubo_client, new) == "recursive"
    assert ledger.release(FOLLOW_HOLDER, [old]) == [old]
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
    assert ledger.release(FOLLOW_HOLDER, [top]) == []
    ledger.release_recursive(top)
    assert pin_of(kubo_client, top) == "recursive"
