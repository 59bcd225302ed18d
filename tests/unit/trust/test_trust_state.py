"""TrustedChain: which roots and commits a client accepts, and why it refuses the rest."""

from __future__ import annotations

from dataclasses import replace

import pytest
from trust_helpers import DAY, FAR, T0, A, B, C, D, E, chain_of, commit_on, root_v1

from ipfsbin.errors import (
    BlockNotFoundError,
    ExpiredError,
    HistoryError,
    RevokedKeyError,
    RollbackError,
    RotationError,
    SignatureError,
    ThresholdError,
)
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.trust.commit import Commit, SignedCommit, put_commit, sign_commit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot, make_root, sign_root
from ipfsbin.trust.signing import Signature
from ipfsbin.trust.state import RootPin, TrustedChain

NOW = T0 + 10 * DAY
V1 = root_v1()  # maintainers A, B, C (2)


def rotate(
    previous: SignedRoot,
    maintainers: list[SigningKey],
    threshold: int,
    *signers: SigningKey,
    expires: int = FAR,
) -> SignedRoot:
    root = make_root(
        expires=expires,
        maintainers=[k.public_key for k in maintainers],
        maintainers_threshold=threshold,
        previous=previous,
    )
    return sign_root(root, *signers)


V2 = rotate(V1, [B, C, D], 2, A, B, C)  # A revoked
V3 = rotate(V2, [C, D, E], 2, B, C, D, E)  # B revoked


def chain(root: SignedRoot = V1, **kwargs: object) -> TrustedChain:
    state = TrustedChain(RootPin(cid=root.root_id), now=NOW, **kwargs)  # type: ignore[arg-type]
    state.update_root(root)
    return state


# -- pinning and rotation ------------------------------------------------------------------


def test_pin_by_root_id_or_envelope_cid() -> None:
    for pinned in (V1.root_id, V1.cid):
        state = TrustedChain(RootPin(cid=pinned), now=NOW)
        state.update_root(V1)
        assert state.root is V1


def test_pin_mismatch() -> None:
    state = TrustedChain(RootPin(cid=V2.root_id), now=NOW)
    with pytest.raises(RotationError, match=f"is not the pinned {V2.root_id}"):
        state.update_root(V1)


def test_pin_by_key() -> None:
    state = TrustedChain(RootPin(key_id=A.key_id), now=NOW)
    state.update_root(V1)
    assert state.root is V1
    state = TrustedChain(RootPin(key_id=C.key_id), now=NOW)
    with pytest.raises(RotationError, match=f"not signed by the pinned maintainer key {C.key_id}"):
        state.update_root(V1)


def test_pinned_root_needs_its_own_threshold() -> None:
    lonely = root_v1(A)
    state = TrustedChain(RootPin(cid=lonely.root_id), now=NOW)
    with pytest.raises(ThresholdError, match="trust root .* is signed by 1 of 2 required"):
        state.update_root(lonely)


def test_rotation_across_three_versions() -> None:
    state = chain()
    state.update_root(V2)
    state.update_root(V2)  # the current root again: no-op
    state.update_root(V3)
    assert [r.version for r in state.roots] == [1, 2, 3]
    assert state.revoked() == {A.key_id, B.key_id}
    store = MemoryBlockStore()
    commit = commit_on(V3, C, E, store=store)
    state.update_commit(commit, store)
    assert state.head == commit.commit_id and state.height == 1


def test_rotation_without_old_threshold() -> None:
    # v2 is signed by its own maintainers B, D, but only B of the old A, B, C
    bad = rotate(V1, [B, C, D], 2, B, D)
    state = chain()
    with pytest.raises(
        RotationError, match="signed by 1 of 2 required maintainers keys of version 1"
    ):
        state.update_root(bad)
    assert state.root is V1


def test_rotation_without_new_threshold() -> None:
    bad = rotate(V1, [B, C, D], 2, A, B)  # new maintainers: only B
    with pytest.raises(ThresholdError, match="signed by 1 of 2 required maintainers keys"):
        chain().update_root(bad)


def test_rotation_must_not_skip_or_go_back() -> None:
    state = chain()
    with pytest.raises(
        RotationError, match="version 3 skips ahead of the accepted 1; expected version 2"
    ):
        state.update_root(V3)
    state.update_root(V2)
    with pytest.raises(RollbackError, match="trust root version 1 is not above the accepted 2"):
        state.update_root(V1)


def test_rotation_must_link_previous() -> None:
    other_v1 = sign_root(make_root(expires=FAR, maintainers=[A.public_key]), A)
    stranger = rotate(other_v1, [A, B], 1, A, B, C)
    with pytest.raises(RotationError, match=f"expected the accepted version 1 {V1.root_id}"):
        chain().update_root(stranger)


def test_rotation_with_forged_old_signature() -> None:
    sigs = [Signature(key=s.key, sig=bytes(64)) if s.key == A.key_id else s for s in V2.signatures]
    forged = SignedRoot.create(V2.root, sigs)
    with pytest.raises(SignatureError, match=f"signature by {A.key_id} does not verify"):
        chain().update_root(forged)


# -- commits -------------------------------------------------------------------------------


def test_accepts_a_chain_and_skips_ahead() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 5, store)
    state = chain()
    state.update_commit(commits[0], store)
    report = state.update_commit(commits[4], store)  # jumps over three commits
    assert report.met
    assert (state.head, state.height) == (commits[4].commit_id, 5)
    assert state.head_commit is commits[4]


def test_first_commit_needs_no_history() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 3, store)
    state = chain()
    state.update_commit(commits[2], MemoryBlockStore())  # parents need not be present
    assert state.height == 3


def test_refeeding_the_head_is_a_noop() -> None:
    store = MemoryBlockStore()
    first = commit_on(V1, A, B, store=store)
    state = chain()
    state.update_commit(first, store)
    state.update_commit(sign_commit(first, C), store)  # more signatures, same commit ID
    assert state.height == 1


def test_below_threshold() -> None:
    store = MemoryBlockStore()
    with pytest.raises(ThresholdError, match="is signed by 1 of 2 required maintainers keys"):
        chain().update_commit(commit_on(V1, A, store=store), store)


def test_forged_commit_signature() -> None:
    store = MemoryBlockStore()
    good = commit_on(V1, A, B, C, store=store)
    sigs = [
        Signature(key=s.key, sig=bytes(64)) if s.key == C.key_id else s for s in good.signatures
    ]
    forged = SignedCommit.create(good.commit, sigs)
    with pytest.raises(SignatureError, match=f"signature by {C.key_id} does not verify"):
        chain().update_commit(forged, store)


def test_rollback() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 7, store)
    state = chain()
    state.update_commit(commits[6], store)
    with pytest.raises(RollbackError, match="height 5 is not above the accepted 7"):
        state.update_commit(commits[4], store)
    assert state.height == 7


def test_rollback_from_saved_state() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 3, store)
    state = TrustedChain(RootPin(cid=V1.root_id), now=NOW, head=commits[2].commit_id, height=3)
    state.update_root(V1)
    with pytest.raises(RollbackError, match="height 2 is not above the accepted 3"):
        state.update_commit(commits[1], store)


def test_same_height_fork_is_rollback() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 2, store)
    state = chain()
    state.update_commit(commits[1], store)
    fork = commit_on(V1, parents=(commits[0],), n=99, store=store)
    with pytest.raises(RollbackError, match="height 2 is not above the accepted 2"):
        state.update_commit(fork, store)


def test_rewritten_history() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 3, store)
    state = chain()
    state.update_commit(commits[1], store)
    # a different line of history from the same first commit, now taller
    other = commit_on(V1, parents=(commits[0],), n=50, store=store)
    other = commit_on(V1, parents=(other,), n=51, store=store)
    with pytest.raises(HistoryError, match="is not an ancestor of commit .* history was rewritten"):
        state.update_commit(other, store)
    assert state.head == commits[1].commit_id


def test_unrelated_history() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 1, store)
    state = chain()
    state.update_commit(commits[0], store)
    orphan = commit_on(V1, n=7, store=store)
    orphan = commit_on(V1, parents=(orphan,), n=8, store=store)
    with pytest.raises(
        HistoryError, match=f"the accepted head {commits[0].commit_id} \\(height 1\\)"
    ):
        state.update_commit(orphan, store)


def test_merge_commit_reaches_head_through_second_parent() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 3, store)
    state = chain()
    state.update_commit(commits[1], store)
    side = commit_on(V1, parents=(commits[0],), n=20, store=store)
    side = commit_on(V1, parents=(side,), n=21, store=store)
    side = commit_on(V1, parents=(side,), n=22, store=store)
    merge = commit_on(V1, parents=(side, commits[2]), n=23, store=store)
    state.update_commit(merge, store)
    assert state.height == 5


def test_lying_height_is_history_error() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 1, store)
    state = chain()
    state.update_commit(commits[0], store)
    # claims height 9 directly on top of height 1, to jump over future commits
    liar = Commit(
        parents=(commits[0].commit_id,),
        index=commits[0].commit.index,
        height=9,
        time=T0,
        expires=T0 + 30 * DAY,
        root=V1.root_id,
        message="",
    )
    with pytest.raises(
        HistoryError, match="has height 9 but its highest parent has height 1; expected 8"
    ):
        state.update_commit(sign_commit(liar, A, B), store)


def test_walk_is_bounded() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 12, store)
    state = TrustedChain(RootPin(cid=V1.root_id), now=NOW, max_walk=5)
    state.update_root(V1)
    state.update_commit(commits[0], store)
    with pytest.raises(
        HistoryError, match="gave up looking for the accepted head .* after 5 commits"
    ):
        state.update_commit(commits[11], store)


def test_missing_parent_block_is_a_store_error() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 3, store)
    state = chain()
    state.update_commit(commits[0], store)
    sparse = MemoryBlockStore()
    put_commit(sparse, commits[2])
    with pytest.raises(BlockNotFoundError):
        state.update_commit(commits[2], sparse)


def test_parent_that_is_not_a_commit() -> None:
    store = MemoryBlockStore()
    commits = chain_of(V1, 1, store)  # also stores V1: its payload is a block, not a commit
    state = chain()
    state.update_commit(commits[0], store)
    commit = replace(commits[0].commit, parents=(V1.root_id,), height=2)
    with pytest.raises(
        HistoryError, match=f"parent {V1.root_id} of commit .* is not a valid commit"
    ):
        state.update_commit(sign_commit(commit, A, B), store)


# -- expiry --------------------------------------------------------------------------------


def test_expired_commit() -> None:
    store = MemoryBlockStore()
    old = commit_on(V1, time=T0, expires=T0 + DAY, store=store)
    with pytest.raises(
        ExpiredError, match="expired at 2026-01-02T00:00:00Z; now is 2026-01-11T00:00:00Z"
    ):
        chain().update_commit(old, store)


def test_expired_commit_allowed_when_stale_is_allowed() -> None:
    store = MemoryBlockStore()
    old = commit_on(V1, time=T0, expires=T0 + DAY, store=store)
    state = chain(allow_stale=True)
    state.update_commit(old, store)
    assert state.height == 1


def test_expired_root() -> None:
    short = root_v1(expires=T0 + DAY)
    store = MemoryBlockStore()
    state = chain(short)
    with pytest.raises(ExpiredError, match="trust root version 1 expired at 2026-01-02T00:00:00Z"):
        state.update_commit(commit_on(short, store=store), store)


# -- revocation and roots named by commits -------------------------------------------------


def test_revoked_key_signature_refused_even_above_threshold() -> None:
    store = MemoryBlockStore()
    state = chain()
    state.update_root(V2)
    # B and C are enough under v2, but A (revoked by v2) also signed
    commit = commit_on(V2, A, B, C, store=store)
    with pytest.raises(RevokedKeyError, match=f"signed by {A.key_id}, which trust root version 2"):
        state.update_commit(commit, store)


def test_old_commit_signed_by_revoked_key_after_rotation() -> None:
    store = MemoryBlockStore()
    commit = commit_on(V1, A, B, store=store)  # made under v1
    state = chain()
    state.update_root(V2)
    with pytest.raises(RevokedKeyError, match="no longer lists as maintainers"):
        state.update_commit(commit, store)


def test_old_root_commit_with_current_signers_accepted() -> None:
    store = MemoryBlockStore()
    commit = commit_on(V1, B, C, store=store)  # named v1, signed by keys v2 still lists
    state = chain()
    state.update_root(V2)
    state.update_commit(commit, store)


def test_commit_under_unknown_root() -> None:
    store = MemoryBlockStore()
    commit = commit_on(V2, B, C, store=store)
    with pytest.raises(RotationError, match="which is not in the accepted chain .*version 1"):
        chain().update_commit(commit, store)


def test_readded_key_is_no_longer_revoked() -> None:
    v3 = rotate(V2, [A, B, C], 2, B, C, A)
    state = chain()
    state.update_root(V2)
    state.update_root(v3)
    assert state.revoked() == {D.key_id}


# -- call order ----------------------------------------------------------------------------


def test_commit_before_root_is_a_caller_error() -> None:
    state = TrustedChain(RootPin(cid=V1.root_id), now=NOW)
    with pytest.raises(RuntimeError, match="call update_root\\(\\) first"):
        state.update_commit(commit_on(V1), MemoryBlockStore())


def test_root_after_commit_is_a_caller_error() -> None:
    store = MemoryBlockStore()
    state = chain()
    state.update_commit(commit_on(V1, store=store), store)
    with pytest.raises(RuntimeError, match="before the first update_commit"):
        state.update_root(V2)


@pytest.mark.parametrize(
    "kwargs",
    [{"head": V1.root_id}, {"height": 3}, {"head": V1.root_id, "height": 0}, {"max_walk": 0}],
)
def test_bad_constructor_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TrustedChain(RootPin(cid=V1.root_id), now=NOW, **kwargs)  # type: ignore[arg-type]


def test_pin_needs_exactly_one_of_cid_or_key() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RootPin()
    with pytest.raises(ValueError, match="exactly one"):
        RootPin(cid=V1.root_id, key_id=A.key_id)
