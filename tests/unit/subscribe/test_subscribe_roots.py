"""Trust roots a follower finds by itself in commit envelopes: key-only pins and rotations."""

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
)

from ipfsbin.codec.cid import CID
from ipfsbin.subscribe import SubscriptionStore, SyncResult, sync_subscription
from ipfsbin.subscribe._roots import MAX_UNSIGNED_ROOTS
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot, make_root, put_root, sign_root
from ipfsbin.trust.state import RootPin

NEW = SigningKey.from_seed(bytes([60]) * 32)


class Follower:
    def __init__(
        self, tmp_path: Path, pub: Publisher, pin: RootPin, root: CID | None = None
    ) -> None:
        self.pub = pub
        self.records = Records()
        self.fetching = Fetching(pub.store)
        self.pins = PinSet()
        self.state = SubscriptionStore(tmp_path / "subs.sqlite")
        self.state.add(pub.name, pin, root, now=T0)

    def sync(self, at: int) -> SyncResult:
        self.records.records[self.pub.name] = self.pub.record(at=at)
        return sync_subscription(
            self.state,
            self.pub.name,
            records=self.records,
            store=self.fetching,
            keeper=self.pins,
            local_store=self.fetching.local,
            now=float(at + 60),
            workers=1,
        )


@pytest.fixture
def pub() -> Publisher:
    p = Publisher(100)
    p.listed_roots = (p.root.cid,)
    p.head = p._commit(p.index, now=T0)  # the first commit again, now listing its root
    return p


@pytest.fixture
def keyed(tmp_path: Path, pub: Publisher) -> Iterator[Follower]:
    f = Follower(tmp_path, pub, RootPin(key_id=MAINTAINER.key_id))
    yield f
    f.state.close()


def rotate(
    pub: Publisher, *signers: SigningKey, maintainers: tuple[SigningKey, ...] = (MAINTAINER, NEW)
) -> SignedRoot:
    """Root version 2 (maintainers and publishers as given), made the publisher's root."""
    v1 = pub.root
    v2 = sign_root(
        make_root(
            expires=T0 + 365 * DAY,
            maintainers=[k.public_key for k in maintainers],
            publishers=[PUBLISHER.public_key],
            previous=v1,
        ),
        *signers,
    )
    put_root(pub.store, v2)
    pub.root = v2
    pub.listed_roots = (v1.cid, v2.cid)
    return v2


def assert_refused(f: Follower, result: SyncResult, kind: str, fragment: str) -> None:
    assert result.outcome == "refused", result
    assert result.error is not None and result.error.startswith(f"{kind}:"), result.error
    assert fragment in result.error
    sub = f.state.get(f.pub.name)
    assert sub.error == result.error


def test_key_pin_finds_root_v1_in_the_first_commit(keyed: Follower) -> None:
    assert keyed.state.get(keyed.pub.name).roots == ()
    result = keyed.sync(T0)
    assert result.outcome == "accepted", result.error
    sub = keyed.state.get(keyed.pub.name)
    assert sub.head == keyed.pub.head.commit_id and sub.height == 1
    assert sub.roots == (keyed.pub.root.cid,)
    assert {keyed.pub.root.cid, keyed.pub.root.root_id} <= keyed.pins.kept
    # the next head names the same root: nothing to discover, still accepted
    keyed.pub.update([3], now=T0 + DAY)
    assert keyed.sync(T0 + DAY).outcome == "accepted"
    assert keyed.state.get(keyed.pub.name).roots == (keyed.pub.root.cid,)


def test_key_pin_without_listed_roots_says_what_to_do(tmp_path: Path) -> None:
    pub = Publisher(20)  # its commits list no roots
    f = Follower(tmp_path, pub, RootPin(key_id=MAINTAINER.key_id))
    result = f.sync(T0)
    assert_refused(f, result, "TrustError", "does not list its trust root's envelope")
    assert result.hint is not None and "--root CID" in result.hint
    assert f.state.get(pub.name).head is None


def test_key_pin_refuses_a_root_the_key_did_not_sign(tmp_path: Path, pub: Publisher) -> None:
    f = Follower(tmp_path, pub, RootPin(key_id=STRANGER.key_id))
    result = f.sync(T0)
    assert_refused(f, result, "RotationError", "not signed by the pinned maintainer key")
    sub = f.state.get(pub.name)
    assert sub.head is None and sub.roots == ()


def test_rotation_is_taken_in_by_the_next_commit(keyed: Follower) -> None:
    assert keyed.sync(T0).outcome == "accepted"
    v1 = keyed.pub.root
    v2 = rotate(keyed.pub, MAINTAINER, NEW)
    # signed by the new maintainer alone: only root v2 makes it valid
    keyed.pub.update([1, 2], now=T0 + DAY, signers=(NEW,))
    result = keyed.sync(T0 + DAY)
    assert result.outcome == "accepted", result.error
    sub = keyed.state.get(keyed.pub.name)
    assert sub.height == 2 and sub.roots == (v1.cid, v2.cid)
    assert {v2.cid, v2.root_id} <= keyed.pins.kept
    keyed.pub.update([4], now=T0 + 2 * DAY, signers=(NEW,))
    assert keyed.sync(T0 + 2 * DAY).outcome == "accepted"


def test_rotation_reaches_a_cid_pinned_follower_without_add_root(
    tmp_path: Path, pub: Publisher
) -> None:
    f = Follower(tmp_path, pub, RootPin(cid=pub.root.root_id), pub.root.cid)
    assert f.sync(T0).outcome == "accepted"
    v2 = rotate(pub, MAINTAINER, NEW)
    pub.update([1], now=T0 + DAY, signers=(NEW,))
    assert f.sync(T0 + DAY).outcome == "accepted"
    assert f.state.get(pub.name).roots == (pub.listed_roots[0], v2.cid)
    f.state.close()


def test_key_pin_of_a_later_maintainer_starts_at_the_root_it_signed(
    tmp_path: Path, pub: Publisher
) -> None:
    v2 = rotate(pub, MAINTAINER, NEW)
    pub.update([1], now=T0 + DAY, signers=(NEW,))
    f = Follower(tmp_path, pub, RootPin(key_id=NEW.key_id))
    assert f.sync(T0 + DAY).outcome == "accepted"
    assert f.state.get(pub.name).roots == (v2.cid,)
    f.state.close()


def test_forged_rotation_is_refused_and_the_head_kept(keyed: Follower) -> None:
    assert keyed.sync(T0).outcome == "accepted"
    good = keyed.state.get(keyed.pub.name)
    # version 2 signed by the new key only: version 1's maintainer never agreed
    rotate(keyed.pub, NEW, maintainers=(NEW,))
    keyed.pub.update([1], now=T0 + DAY, signers=(NEW,))
    result = keyed.sync(T0 + DAY)
    assert_refused(keyed, result, "RotationError", "required maintainers keys of version 1")
    sub = keyed.state.get(keyed.pub.name)
    assert (sub.head, sub.height, sub.roots) == (good.head, good.height, good.roots)


def test_forged_signature_on_a_listed_root_is_refused(keyed: Follower) -> None:
    assert keyed.sync(T0).outcome == "accepted"
    v2 = rotate(keyed.pub, MAINTAINER, NEW)
    sigs = list(v2.signatures)
    sigs[0] = type(sigs[0])(key=sigs[0].key, sig=bytes([sigs[0].sig[0] ^ 1]) + sigs[0].sig[1:])
    forged = SignedRoot.create(v2.root, sigs)
    put_root(keyed.pub.store, forged)
    keyed.pub.listed_roots = (keyed.pub.listed_roots[0], forged.cid)
    keyed.pub.update([1], now=T0 + DAY, signers=(NEW,))
    result = keyed.sync(T0 + DAY)
    assert_refused(keyed, result, "SignatureError", "does not verify")
    assert keyed.state.get(keyed.pub.name).height == 1


def chain_of_roots(pub: Publisher, count: int, signer: SigningKey) -> list[SignedRoot]:
    """``count`` root versions after ``pub.root`` (or from version 1), each signed by ``signer``."""
    previous: SignedRoot | None = pub.root
    made = []
    for _ in range(count):
        signed = sign_root(
            make_root(
                expires=T0 + 365 * DAY,
                maintainers=[signer.public_key],
                publishers=[PUBLISHER.public_key],
                previous=previous,
            ),
            signer,
        )
        put_root(pub.store, signed)
        made.append(signed)
        previous = signed
    return made


def test_a_hostile_list_of_roots_costs_one_unverified_root(tmp_path: Path, pub: Publisher) -> None:
    # the IPNS key holder lists 200 made-up rotations before any signature can be checked
    f = Follower(tmp_path, pub, RootPin(cid=pub.root.root_id), pub.root.cid)
    assert f.sync(T0).outcome == "accepted"
    junk = chain_of_roots(pub, 200, STRANGER)
    pub.root = junk[-1]
    pub.listed_roots = (pub.listed_roots[0], *(r.cid for r in junk))
    pub.update([1], now=T0 + DAY, signers=(STRANGER,))
    before = f.fetching.fetched
    result = f.sync(T0 + DAY)
    assert_refused(f, result, "RotationError", "required maintainers keys of version 1")
    # the commit's envelope and payload, and the first listed rotation's; nothing more
    assert f.fetching.fetched - before == 4


def test_a_key_pin_fetches_a_bounded_number_of_roots_its_key_did_not_sign(
    keyed: Follower,
) -> None:
    pub = keyed.pub
    junk = []
    for i in range(200):  # 200 different version-1 roots the pinned key never signed
        junk.append(
            sign_root(
                make_root(expires=T0 + 365 * DAY + i, maintainers=[STRANGER.public_key]), STRANGER
            )
        )
        put_root(pub.store, junk[-1])
    pub.root = junk[-1]
    pub.listed_roots = tuple(r.cid for r in junk)
    pub.head = pub._commit(pub.index, now=T0, signers=(STRANGER,))
    result = keyed.sync(T0)
    assert_refused(keyed, result, "RotationError", "not signed by the pinned maintainer key")
    assert keyed.fetching.fetched <= 2 + 2 * (MAX_UNSIGNED_ROOTS + 1)
