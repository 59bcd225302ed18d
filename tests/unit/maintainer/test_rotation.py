"""Rotating the trust root over a memory block store: rotate, co-sign, adopt, follow, refuse."""

from __future__ import annotations

import sqlite3

import pytest
from maintainer_helpers import (
    BUILDER_X,
    MAINT_A,
    MAINT_B,
    MAINT_C,
    STRANGER,
    T0,
    MemoryIndex,
    publish,
)

from ipfsbin.errors import IndexOperationError, RevokedKeyError, SignatureError, TrustError
from ipfsbin.kubo.pins import NoPins
from ipfsbin.maintainer import chain, curate, roots
from ipfsbin.maintainer.verify import verify_index
from ipfsbin.maintainer.workspace import Workspace, workspace_dir
from ipfsbin.trust.commit import load_commit, make_commit, put_commit, sign_commit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import load_root
from ipfsbin.trust.signing import Signature
from ipfsbin.trust.state import RootPin, TrustedChain


class Setup(MemoryIndex):
    def __init__(self, *local: SigningKey, threshold: int = 1, extra: tuple[str, ...] = ()):
        super().__init__(*local, threshold=threshold, extra=extra, builders=(BUILDER_X,))
        self.n = 0

    def rotate(self, *keys: SigningKey, now: int = T0 + 100, **change: object) -> roots.RootResult:
        return roots.rotate_root(
            self.ws,
            self.store,
            self.pins,
            [(_name(k), k) for k in keys],
            roots.RootChange(**change),  # type: ignore[arg-type]
            now=now,
        )

    def sign(self, envelope: object, *keys: SigningKey, now: int = T0 + 200) -> roots.RootResult:
        return roots.sign_root(
            self.ws, self.store, self.pins, envelope, [(_name(k), k) for k in keys], now=now
        )  # type: ignore[arg-type]

    def commit(self, key: SigningKey, now: int = T0 + 300) -> chain.CommitResult:
        self.n += 1
        data = f"package {self.n}".encode()
        self.files.add(data)
        pub = publish(self.store, f"app-misc/p{self.n}-1", data, BUILDER_X)
        assert pub.attestation is not None
        curate.add(self.ws, self.store, self.files.read, [pub.attestation.cid])
        return chain.commit(self.ws, self.store, self.pins, key, "change", now=now)


def _name(key: SigningKey) -> str:
    return {MAINT_A: "a", MAINT_B: "b", MAINT_C: "c"}.get(key, "x")


def test_rotation_met_by_local_keys_is_adopted_and_commits_list_the_chain() -> None:
    s = Setup(MAINT_A)
    v1 = s.ws.root
    done = s.rotate(
        MAINT_A,
        MAINT_B,
        add_maintainers=(MAINT_B.key_id,),
        remove_maintainers=(MAINT_A.key_id,),
    )
    assert done.adopted and done.met
    assert done.signed.version == 2 and done.signed.root.previous == s.init.root.root_id
    assert done.signed.root.maintainers.keys == (MAINT_B.key_id,)
    # publishers and builders do not follow the maintainers: the IPNS name stays valid
    assert done.signed.root.publishers.keys == (MAINT_A.key_id,)
    assert done.signed.root.builders.keys == (BUILDER_X.key_id,)
    assert s.ws.root == done.signed.cid and s.ws.root_envelopes() == (v1, done.signed.cid)
    assert [r.version for r in s.ws.root_chain()] == [1, 2]
    assert done.signed.cid in s.pins.pinned and v1 in s.pins.pinned
    assert ("b", MAINT_B.key_id) in s.ws.key_names and s.ws.publisher_key_name == "m0"

    with pytest.raises(TrustError, match="is not a maintainer under trust root version 2"):
        s.commit(MAINT_A)
    s.ws.unstage()
    head = s.commit(MAINT_B)
    assert head.head and head.signed.commit.root == done.signed.root_id
    assert head.signed.roots == (v1, done.signed.cid)
    assert verify_index(s.ws, s.store, now=T0 + 400).ok

    # a follower pinned to key A walks the listed chain and takes the commit
    follower = TrustedChain(RootPin(key_id=MAINT_A.key_id), now=T0 + 400)
    for cid in head.signed.roots:
        follower.update_root(load_root(s.store, cid))
    follower.update_commit(load_commit(s.store, head.signed.cid), s.store)
    assert follower.root.version == 2 and MAINT_A.key_id in follower.revoked()


def test_rotation_waits_for_the_new_maintainer_then_is_adopted() -> None:
    s = Setup(MAINT_A)
    draft = s.rotate(
        MAINT_A, add_maintainers=(MAINT_B.key_id,), remove_maintainers=(MAINT_A.key_id,)
    )
    assert not draft.adopted and draft.by_old.met and not draft.by_new.met
    assert draft.by_new.missing == (MAINT_B.key_id,)
    assert s.ws.signed_root.version == 1 and s.ws.draft_root == draft.signed
    assert draft.signed.cid in s.pins.pinned
    with pytest.raises(IndexOperationError, match="still waiting for co-signatures"):
        s.rotate(MAINT_A, threshold=1)

    # a co-signer on another host signs what it fetched; the maintainer merges it
    elsewhere = roots.sign_root(
        None, s.store, NoPins(), draft.signed.cid, [("b", MAINT_B)], now=T0 + 150
    )
    assert elsewhere.met and not elsewhere.adopted
    picked = s.sign(elsewhere.signed.cid)
    assert picked.adopted and s.ws.signed_root.version == 2 and s.ws.draft_root is None
    assert set(picked.signed.signers) == {MAINT_A.key_id, MAINT_B.key_id}
    assert draft.signed.cid not in s.pins.pinned and picked.signed.cid in s.pins.pinned
    assert s.commit(MAINT_B).head


def test_two_of_three_rotation_collects_signatures_locally() -> None:
    s = Setup(MAINT_A, MAINT_B, threshold=2, extra=(MAINT_C.key_id,))
    first = s.rotate(MAINT_A, remove_maintainers=(MAINT_C.key_id,))
    assert not first.adopted and len(first.by_old.valid) == 1
    second = s.sign(first.signed.cid, MAINT_B)
    assert second.adopted and s.ws.signed_root.root.maintainers.keys == tuple(
        sorted((MAINT_A.key_id, MAINT_B.key_id))
    )


def test_rotation_errors_are_one_clear_line() -> None:
    s = Setup(MAINT_A, MAINT_B, threshold=2)
    with pytest.raises(
        IndexOperationError, match="threshold of 2 cannot be met by the 1 maintainer"
    ):
        s.rotate(MAINT_A, remove_maintainers=(MAINT_B.key_id,))
    with pytest.raises(IndexOperationError, match="would have no maintainers"):
        s.rotate(MAINT_A, remove_maintainers=(MAINT_A.key_id, MAINT_B.key_id), threshold=1)
    with pytest.raises(IndexOperationError, match="does not list it"):
        s.rotate(MAINT_A, remove_maintainers=(MAINT_C.key_id,))
    with pytest.raises(IndexOperationError, match="already listed"):
        s.rotate(MAINT_A, add_maintainers=(MAINT_B.key_id,))
    with pytest.raises(TrustError, match="maintainer of neither trust root version 1"):
        s.rotate(MAINT_A, STRANGER)
    with pytest.raises(TrustError, match="none of the given keys is a maintainer"):
        s.rotate(MAINT_C, add_maintainers=(MAINT_C.key_id,))
    with pytest.raises(IndexOperationError, match="at least 1"):
        roots.RootChange(threshold=0)
    assert s.ws.signed_root.version == 1 and s.ws.draft_root is None


def test_sign_root_refuses_strangers_forgeries_and_other_versions() -> None:
    s = Setup(MAINT_A)
    draft = s.rotate(MAINT_A, add_maintainers=(MAINT_B.key_id,), threshold=2)
    with pytest.raises(TrustError, match="maintainer of neither"):
        s.sign(draft.signed.cid, STRANGER)
    with pytest.raises(IndexOperationError, match="no rotation to co-sign"):
        s.sign(s.ws.root, MAINT_A)
    bad = draft.signed.signatures[0]
    forged = type(draft.signed).create(
        draft.signed.payload, [Signature(key=bad.key, sig=bytes(64))]
    )
    s.store.put_many(forged.blocks())
    with pytest.raises(SignatureError, match="does not verify"):
        s.sign(forged.cid, MAINT_B)
    assert s.ws.signed_root.version == 1
    assert s.sign(draft.signed.cid, MAINT_B).adopted


def test_commit_by_a_revoked_key_is_refused_by_a_follower() -> None:
    s = Setup(MAINT_A)
    good = s.commit(MAINT_A)
    s.rotate(
        MAINT_A,
        MAINT_B,
        add_maintainers=(MAINT_B.key_id,),
        remove_maintainers=(MAINT_A.key_id,),
    )
    attack = sign_commit(
        make_commit(
            index=good.signed.commit.index,
            root=s.ws.signed_root,
            time=T0 + 500,
            parents=(good.signed,),
            message="by a revoked key",
        ),
        MAINT_A,
        roots=s.ws.root_envelopes(),
    )
    put_commit(s.store, attack)
    follower = TrustedChain(
        RootPin(key_id=MAINT_A.key_id),
        now=T0 + 600,
        head=good.signed.commit_id,
        height=good.signed.height,
    )
    for cid in attack.roots:
        follower.update_root(load_root(s.store, cid))
    with pytest.raises(RevokedKeyError):
        follower.update_commit(attack, s.store)


def test_commit_draft_blocks_rotation() -> None:
    s = Setup(MAINT_A, MAINT_B, threshold=2)
    s.commit(MAINT_A)
    with pytest.raises(
        IndexOperationError, match="is waiting for co-signatures under the current root"
    ):
        s.rotate(MAINT_A, MAINT_B, threshold=1)


def test_a_workspace_made_before_root_history_is_migrated() -> None:
    s = Setup(MAINT_A)
    v1 = s.ws.root
    s.ws.close()
    db = sqlite3.connect(workspace_dir("default") / "state.sqlite")
    # as written before root history and before schema versions: no tables, user_version 0
    db.executescript("DROP TABLE roots; DROP TABLE root_draft; PRAGMA user_version = 0;")
    db.close()
    with Workspace.open("default") as ws:
        assert ws.root_envelopes() == (v1,) and ws.draft_root is None
    s.ws = Workspace.open("default")
    assert s.rotate(MAINT_A, threshold=1).adopted
    assert s.ws.root_envelopes()[0] == v1 and len(s.ws.root_envelopes()) == 2
