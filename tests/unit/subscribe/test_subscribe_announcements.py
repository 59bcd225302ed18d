"""Asking the maintainers for newer trust roots: a rotation the index's name withholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from subscribe_helpers import (
    DAY,
    PUBLISHER,
    STRANGER,
    T0,
    Fetching,
    MemoryFollower,
    Publisher,
    Records,
)

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.errors import RevokedKeyError, SchemaError
from ipfsbin.index import ProllyTree
from ipfsbin.ipns import create_record
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.subscribe.announcements import ask_maintainers, check_announcements
from ipfsbin.trust.commit import make_commit, put_commit, sign_commit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot, make_root, put_root, sign_root
from ipfsbin.trust.rootlist import RootList, put_root_list
from ipfsbin.trust.state import RootPin, TrustedChain

STOLEN, HONEST, NEW = (SigningKey.from_seed(bytes([i + 70]) * 32) for i in range(3))
NOW = datetime.fromtimestamp(T0 + DAY, tz=UTC)


def root(
    *maintainers: SigningKey, signers: tuple[SigningKey, ...], previous: SignedRoot | None = None
) -> SignedRoot:
    return sign_root(
        make_root(
            expires=T0 + 365 * DAY,
            maintainers=[k.public_key for k in maintainers],
            publishers=[PUBLISHER.public_key],
            previous=previous,
        ),
        *signers,
    )


class World:
    """Root v1 (STOLEN, HONEST; threshold 1) and v2 dropping STOLEN, signed by HONEST."""

    def __init__(self) -> None:
        self.store = MemoryBlockStore()
        self.v1 = root(STOLEN, HONEST, signers=(STOLEN, HONEST))
        self.v2 = root(HONEST, NEW, signers=(HONEST, NEW), previous=self.v1)
        for signed in (self.v1, self.v2):
            put_root(self.store, signed)
        self.records = Records()
        self.fetching = Fetching(self.store)

    def announce(self, key: SigningKey, roots: list[CID], sequence: int) -> None:
        listed = put_root_list(self.store, roots)
        self.records.records[key.key_id] = create_record(
            key, listed, sequence, lifetime=timedelta(days=2), now=NOW
        )

    def chain(self) -> TrustedChain:
        chain = TrustedChain(RootPin(cid=self.v1.root_id), now=T0 + DAY)
        chain.update_root(self.v1)
        return chain


def test_the_maintainers_asked_are_the_non_publishers() -> None:
    both = root(HONEST, PUBLISHER, signers=(HONEST, PUBLISHER))
    assert ask_maintainers(both) == (HONEST.key_id,)


def test_a_rotation_withheld_by_the_index_name_is_learned_from_an_honest_maintainer() -> None:
    world = World()
    world.announce(HONEST, [world.v1.cid, world.v2.cid], 2)
    chain = world.chain()
    found = check_announcements(chain, world.records, world.fetching, now=NOW)
    assert [r.cid for r in found.learned] == [world.v2.cid]
    assert chain.root.cid == world.v2.cid
    assert set(found.asked) == {STOLEN.key_id, HONEST.key_id}
    # the thief announced nothing under the stolen key's name: reported, not fatal
    (problem,) = found.problems
    assert problem.startswith(f"{STOLEN.key_id}: IpnsError: no IPNS record found")
    # and a commit the thief signs under version 1 is now refused
    index = ProllyTree(world.store).build([])
    signed = sign_commit(make_commit(index=index, root=world.v1, time=T0 + DAY), STOLEN)
    put_commit(world.store, signed)
    with pytest.raises(RevokedKeyError, match="no longer lists as maintainers"):
        chain.update_commit(signed, world.store)


def test_a_stale_announcement_teaches_nothing_and_is_no_problem() -> None:
    world = World()
    world.announce(STOLEN, [world.v1.cid], 1)
    world.announce(HONEST, [world.v1.cid], 1)
    found = check_announcements(world.chain(), world.records, world.fetching, now=NOW)
    assert found.learned == () and found.problems == ()


def test_a_forged_rotation_is_refused_and_the_root_kept() -> None:
    world = World()
    forged = root(STRANGER, signers=(STRANGER,), previous=world.v1)
    put_root(world.store, forged)
    world.announce(HONEST, [world.v1.cid, forged.cid], 2)
    chain = world.chain()
    found = check_announcements(chain, world.records, world.fetching, now=NOW)
    assert found.learned == () and chain.root.cid == world.v1.cid
    assert any(
        "RotationError" in p and "required maintainers keys of version 1" in p
        for p in found.problems
    )


def test_an_announcement_of_something_else_is_a_problem() -> None:
    world = World()
    world.records.records[HONEST.key_id] = create_record(
        HONEST, world.v2.cid, 2, lifetime=timedelta(days=2), now=NOW
    )
    found = check_announcements(world.chain(), world.records, world.fetching, now=NOW)
    assert found.learned == ()
    assert any(p.startswith(f"{HONEST.key_id}: SchemaError") for p in found.problems)


def test_a_long_hostile_list_costs_one_unverified_root() -> None:
    world = World()
    junk: list[CID] = []
    previous = world.v1
    for _ in range(100):
        previous = root(STRANGER, signers=(STRANGER,), previous=previous)
        put_root(world.store, previous)
        junk.append(previous.cid)
    world.announce(STOLEN, [world.v1.cid, *junk], 101)
    found = check_announcements(world.chain(), world.records, world.fetching, now=NOW)
    assert found.learned == ()
    # the list, and the envelope and payload of the first root after version 1
    assert world.fetching.fetched == 3


def test_roots_list_worked_example_in_schema_doc() -> None:
    """schema/trust.md shows this block; keep the document true."""
    v1 = CID.from_text("bafyreidswnu3frcllvwfzirdn3nvwye6u62ntsyll3igh24nnzv4uzoaki")
    v2 = CID.from_text("bafyreibgx2tba7ai4fps3uqcpq3c3iir66i7b5f6ij3unloldt6jhv4vvm")
    cid, data = RootList(roots=(v1, v2)).block()
    assert str(cid) == "bafyreihw6h3cyfmrrxqn4sydqkqd3no6qxm2qdgwthiba5yfefs2xypf7e"
    assert len(data) == 111
    assert RootList.from_dag(dagcbor.decode_block(cid, data)).roots == (v1, v2)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"type": "ipfsbin/roots/1", "roots": []}, "names at least one trust root"),
        ({"type": "ipfsbin/roots/1", "roots": [1]}, "roots list root"),
        ({"type": "ipfsbin/roots/1"}, "roots"),
        ({"type": "ipfsbin/roots/1", "roots": [], "extra": 1}, "extra"),
        ({"type": "ipfsbin/commit/1", "roots": []}, "ipfsbin/commit/1"),
    ],
)
def test_malformed_roots_lists_are_refused(value: dict[str, object], fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        RootList.from_dag(value)  # type: ignore[arg-type]


# --- the whole sync: a thief holding a revoked maintainer key and the IPNS key ----------


class ThiefWorld(MemoryFollower):
    """Root v1 (STOLEN, HONEST), a head signed by STOLEN; then v2 revokes STOLEN."""

    def __init__(self, tmp_path: Path) -> None:
        self.world = World()
        pub = Publisher(40)
        pub.store = self.world.store
        pub.tree = ProllyTree(self.world.store)
        pub.index = pub.tree.build(sorted(pub.entries.items()))
        pub.root = self.world.v1
        pub.head = pub._commit(pub.index, now=T0, signers=(STOLEN,))
        super().__init__(
            tmp_path / "subs.sqlite",
            pub,
            RootPin(cid=self.world.v1.root_id),
            self.world.v1.cid,
            records=self.world.records,
            fetching=self.world.fetching,
        )


def test_a_thief_cannot_keep_a_follower_on_the_old_root(tmp_path: Path) -> None:
    thief = ThiefWorld(tmp_path)
    assert thief.sync(T0 + 60).outcome == "accepted"
    # the maintainers rotate to v2 (dropping the stolen key) and the honest one announces it;
    # the thief keeps publishing commits under v1, listing no newer root
    thief.world.announce(HONEST, [thief.world.v1.cid, thief.world.v2.cid], 2)
    thief.pub.update([1, 2], now=T0 + DAY, signers=(STOLEN,))
    result = thief.sync(T0 + DAY)
    assert result.outcome == "refused", result
    assert result.error is not None and result.error.startswith("RevokedKeyError:")
    assert "learned trust root version(s) 2 from the maintainers" in result.warnings
    sub = thief.state.get(thief.pub.name)
    assert sub.height == 1 and sub.roots == (thief.world.v1.cid, thief.world.v2.cid)
    assert sub.root_expires == thief.world.v2.root.expires
    assert {thief.world.v2.cid, thief.world.v2.root_id} <= thief.pins.kept
    thief.state.close()


def test_the_maintainers_are_asked_at_most_hourly(tmp_path: Path) -> None:
    thief = ThiefWorld(tmp_path)
    assert thief.sync(T0 + 60).outcome == "accepted"
    checked = thief.state.get(thief.pub.name).roots_checked_at
    assert checked == T0 + 60
    thief.world.announce(HONEST, [thief.world.v1.cid, thief.world.v2.cid], 2)
    assert thief.sync(T0 + 60 + 3599).outcome == "current"
    assert thief.state.get(thief.pub.name).roots == (thief.world.v1.cid,)
    assert thief.sync(T0 + 60 + 3600).outcome == "current"
    assert thief.state.get(thief.pub.name).roots == (thief.world.v1.cid, thief.world.v2.cid)
    thief.state.close()
