"""Maintainer workflow over a memory block store: init, add, yank, commit, sign, read, verify."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest
from maintainer_helpers import (
    BUILDER_X,
    BUILDER_Y,
    DAY,
    MAINT_A,
    MAINT_B,
    MAINT_C,
    STRANGER,
    T0,
    MemoryIndex,
    descriptor,
    forged,
    make_manifest,
    publish,
)

from ipfsbin.codec.cid import CID, DAG_PB, cid_for
from ipfsbin.errors import IndexOperationError, SignatureError, ThresholdError, TrustError
from ipfsbin.index.changeset import Changeset, decode_part
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.kubo.pins import NoPins
from ipfsbin.maintainer import chain, curate, history
from ipfsbin.maintainer.gitexport import BRANCH, export_git
from ipfsbin.maintainer.repro import reproducibility
from ipfsbin.maintainer.verify import verify_index
from ipfsbin.maintainer.workspace import StagedChange, Workspace
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.trust.commit import SignedCommit, put_commit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.signing import Signature


class Setup(MemoryIndex):
    def publish(self, cpv: str, data: bytes, builder: SigningKey | None = BUILDER_X, **kw: object):
        self.files.add(data)
        return publish(self.store, cpv, data, builder, **kw)  # type: ignore[arg-type]

    def add(self, *cids, **kw: bool) -> list[curate.StagedAdd]:
        return curate.add(self.ws, self.store, self.files.read, list(cids), **kw)

    def commit(self, key: SigningKey, message: str = "change", now: int = T0 + 60):
        return chain.commit(self.ws, self.store, self.pins, key, message, now=now)


def test_init_makes_root_and_empty_first_commit() -> None:
    s = Setup(MAINT_A)
    ws = Workspace.open()
    assert ws.root == s.init.root.cid
    assert ws.head == s.init.head.cid
    head = ws.head_commit
    assert head is not None and head.height == 1 and head.commit.message == chain.INIT_MESSAGE
    assert ws.signed_root.root.maintainers.keys == (MAINT_A.key_id,)
    assert ws.publisher_key_name == "m0"
    assert ws.key_names == (("m0", MAINT_A.key_id),)
    assert {s.init.root.cid, s.init.head.cid} <= s.pins.pinned
    assert list(history.entries(s.store, head.commit)) == []


def test_open_missing_workspace_says_how_to_create_it() -> None:
    with pytest.raises(IndexOperationError, match="no index named 'default'") as info:
        Workspace.open()
    assert info.value.hint is not None and "ipfsbin index init" in info.value.hint


def test_init_refuses_threshold_above_local_keys() -> None:
    with pytest.raises(IndexOperationError, match="a threshold of 2 needs 2 local keys"):
        Setup(MAINT_A, threshold=2, extra=(MAINT_B.key_id,))


def test_init_twice_is_refused() -> None:
    Setup(MAINT_A)
    with pytest.raises(IndexOperationError, match="already exists"):
        Setup(MAINT_A)


def test_add_checks_and_stages_then_merges_a_second_builder() -> None:
    s = Setup(MAINT_A)
    first = s.publish("app-misc/hello-1", b"hello binpkg")
    assert first.attestation is not None
    (result,) = s.add(first.attestation.cid)
    assert result.action == "add" and not result.disagree
    assert result.accepted[0].builders == (BUILDER_X.key_id,)
    assert s.files.reads == 1
    second = publish(s.store, "app-misc/hello-1", b"hello binpkg", BUILDER_Y)
    assert second.attestation is not None
    (merged,) = s.add(second.attestation.cid)
    assert merged.key == result.key and merged.action == "add"
    assert set(merged.entry.attestations) == {first.attestation.cid, second.attestation.cid}
    (staged,) = s.ws.staged()
    assert staged.entry == merged.entry
    detail = history.entry_detail(s.ws, s.store, result.key)
    assert detail.staged and detail.repro.summary() == "reproduced by 2 builders"


def test_disagreeing_builders_are_data() -> None:
    s = Setup(MAINT_A)
    desc = descriptor("app-misc/hello-1")
    a = s.publish("app-misc/hello-1", b"bytes of builder x", desc=desc)
    b = s.publish("app-misc/hello-1", b"other bytes of y", BUILDER_Y, desc=desc)
    assert a.attestation is not None and b.attestation is not None
    results = s.add(a.attestation.cid, b.attestation.cid)
    (result,) = results
    assert result.disagree
    assert result.entry.manifest == a.manifest_cid
    detail = history.entry_detail(s.ws, s.store, result.key)
    assert not detail.repro.agree
    assert detail.repro.summary().startswith("builders disagree: ")
    assert BUILDER_X.key_id in detail.repro.summary() and BUILDER_Y.key_id in detail.repro.summary()


def test_bytes_that_do_not_match_the_manifest_are_refused_and_nothing_is_staged() -> None:
    s = Setup(MAINT_A)
    good = s.publish("app-misc/good-1", b"good")
    desc = descriptor("app-misc/evil-1")
    fake_root = cid_for(DAG_PB, b"a multi-chunk file root")
    s.files.files[fake_root] = b"what is really behind the CID"
    lie = make_manifest(desc, b"what the manifest claims", binpkg=fake_root)
    evil = publish(s.store, "app-misc/evil-1", b"", BUILDER_X, desc=desc, manifest=lie)
    assert good.attestation is not None and evil.attestation is not None
    with pytest.raises(TrustError, match="do not match manifest"):
        s.add(good.attestation.cid, evil.attestation.cid)
    assert s.ws.staged() == []


def test_forged_attestation_is_refused() -> None:
    s = Setup(MAINT_A)
    pub = s.publish("app-misc/hello-1", b"hello")
    assert pub.attestation is not None
    bad = forged(pub.attestation)
    s.store.put_many(bad.blocks())
    with pytest.raises(SignatureError, match="does not verify"):
        s.add(bad.cid)
    assert s.ws.staged() == []


def test_unlisted_builder_needs_the_switch() -> None:
    s = Setup(MAINT_A)
    pub = s.publish("app-misc/hello-1", b"hello", STRANGER)
    assert pub.attestation is not None
    with pytest.raises(TrustError, match="does not list as a builder") as info:
        s.add(pub.attestation.cid)
    assert info.value.hint is not None and "--allow-unlisted-builder" in info.value.hint
    (result,) = s.add(pub.attestation.cid, allow_unlisted_builder=True)
    assert result.accepted[0].unlisted and result.accepted[0].builders == (STRANGER.key_id,)


def test_bare_manifest_needs_the_switch() -> None:
    s = Setup(MAINT_A)
    pub = s.publish("app-misc/hello-1", b"hello", None)
    with pytest.raises(TrustError, match="without a builder attestation"):
        s.add(pub.manifest_cid)
    (result,) = s.add(pub.manifest_cid, allow_unattested=True)
    assert result.entry.attestations == ()


def test_commit_with_nothing_staged_is_refused() -> None:
    s = Setup(MAINT_A)
    with pytest.raises(IndexOperationError, match="nothing staged to commit"):
        s.commit(MAINT_A)


def test_commit_log_diff_yank_verify() -> None:
    s = Setup(MAINT_A)
    one = s.publish("app-misc/hello-1", b"hello")
    two = s.publish("dev-libs/libfoo-2", b"libfoo")
    assert one.attestation is not None and two.attestation is not None
    keys = [r.key for r in s.add(one.attestation.cid, two.attestation.cid)]
    result = s.commit(MAINT_A, "add hello and libfoo")
    assert result.head and result.signed.height == 2 and result.changes == 2
    assert s.ws.head == result.signed.cid and s.ws.staged() == []
    assert s.pins.pinned == {s.init.root.cid, result.signed.cid}
    yanked = curate.yank(s.ws, s.store, keys[0], "  miscompiled   with -O3 ")
    assert yanked.entry.reason == "miscompiled with -O3"
    s.commit(MAINT_A, "yank hello", now=T0 + 120)

    entries = history.log(s.ws, s.store)
    assert [e.commit.height for e in entries] == [3, 2, 1]
    assert [(e.added, e.changed, e.removed) for e in entries] == [(0, 1, 0), (2, 0, 0), (0, 0, 0)]
    assert entries[0].signed_by == (MAINT_A.key_id,)
    assert len(history.log(s.ws, s.store, limit=1)) == 1

    old = history.resolve(s.ws, s.store, "HEAD~2")
    new = history.resolve(s.ws, s.store, "HEAD")
    lines = [c.line() for c in history.diff_commits(s.store, old.commit, new.commit)]
    assert sorted(lines) == sorted(
        [
            f"+ {keys[0]}  (yanked; 1 attestation(s); reason: miscompiled with -O3)",
            f"+ {keys[1]}  (ok; 1 attestation(s))",
        ]
    )
    step = history.diff_commits(
        s.store, history.resolve(s.ws, s.store, "HEAD~1").commit, new.commit
    )
    assert [c.line() for c in step] == [f"~ {keys[0]}  (state ok -> yanked (miscompiled with -O3))"]
    by_envelope = history.resolve(s.ws, s.store, str(s.ws.head))
    assert by_envelope.commit_id == new.commit_id

    report = verify_index(s.ws, s.store, now=T0 + 200)
    assert report.ok and report.checked == 3 and report.entries == 2
    assert report.verdict().startswith("OK: 3 commit(s) verified")
    late = verify_index(s.ws, s.store, now=T0 + 30 * DAY)
    assert not late.ok and "expired" in late.verdict() and "ExpiredError" in late.verdict()


def test_commit_links_the_changeset_that_rebuilds_its_index() -> None:
    s = Setup(MAINT_A)
    one = s.publish("app-misc/hello-1", b"hello")
    assert one.attestation is not None
    s.add(one.attestation.cid)
    first = s.commit(MAINT_A, "add hello")
    (key,) = [k for k, _ in ProllyTree(s.store).items(first.signed.commit.index)]
    curate.yank(s.ws, s.store, key, "broken")
    second = s.commit(MAINT_A, "yank hello", now=T0 + 120)

    for result, parent in ((first, s.init.head), (second, first.signed)):
        commit = result.signed.commit
        assert result.changeset and commit.changes == result.changeset
        assert result.to_json()["changeset"] == [str(c) for c in result.changeset]
        changes = Changeset.from_parts([decode_part(c, s.store.get(c)) for c in commit.changes])
        assert changes.base == parent.commit.index
        # a fresh store holding only the parent's tree rebuilds exactly the new index
        rebuilt = ProllyTree(MemoryBlockStore())
        rebuilt.store.put_many(
            (c, s.store.get(c)) for c in all_nodes(ProllyTree(s.store), changes.base)
        )
        assert rebuilt.mutate(changes.base, changes.upsert_map(), changes.deletes) == commit.index
    assert [k for k, _ in second_changes(s, second)] == [key]


def second_changes(s: Setup, result: chain.CommitResult) -> tuple[tuple[str, object], ...]:
    parts = [decode_part(c, s.store.get(c)) for c in result.signed.commit.changes]
    return Changeset.from_parts(parts).upserts


def all_nodes(tree: ProllyTree, root: CID) -> set[CID]:
    seen, stack = set(), [root]
    while stack:
        cid = stack.pop()
        seen.add(cid)
        stack.extend(tree.load(cid).children)
    return seen


def test_yank_of_unknown_key_is_refused() -> None:
    s = Setup(MAINT_A)
    key = f"{'a' * 26}/app-misc/hello/1/{'b' * 26}"
    with pytest.raises(IndexOperationError, match="no entry"):
        curate.yank(s.ws, s.store, key, "bad")


def test_two_of_three_commit_waits_for_a_cosigner() -> None:
    s = Setup(MAINT_A, MAINT_B, threshold=2, extra=(MAINT_C.key_id,))
    pub = s.publish("app-misc/hello-1", b"hello")
    assert pub.attestation is not None
    s.add(pub.attestation.cid)
    head_before = s.ws.head
    result = s.commit(MAINT_A, "needs two")
    assert not result.head and result.valid == (MAINT_A.key_id,) and result.threshold == 2
    assert s.ws.head == head_before
    assert s.ws.draft is not None and s.ws.draft.cid == result.signed.cid
    assert result.signed.cid in s.pins.pinned

    other = s.publish("app-misc/other-1", b"other")
    assert other.attestation is not None
    s.add(other.attestation.cid)
    with pytest.raises(IndexOperationError, match="waiting for co-signatures"):
        s.commit(MAINT_A)
    assert s.ws.unstage() == 1

    # a co-signer elsewhere (no workspace) signs the envelope it fetched by CID
    elsewhere = chain.sign(None, s.store, NoPins(), result.signed.cid, MAINT_C, now=T0 + 90)
    assert elsewhere.met and not elsewhere.head
    # picking their envelope up merges signatures and advances the head
    picked = chain.sign(s.ws, s.store, s.pins, elsewhere.signed.cid, None, now=T0 + 100)
    assert picked.head and set(picked.valid) == {MAINT_A.key_id, MAINT_C.key_id}
    assert s.ws.head == picked.signed.cid and s.ws.draft is None
    assert result.signed.cid not in s.pins.pinned and picked.signed.cid in s.pins.pinned
    # a third signature on the head only replaces its envelope
    more = chain.sign(s.ws, s.store, s.pins, picked.signed.cid, MAINT_B, now=T0 + 110)
    assert len(more.valid) == 3 and s.ws.head == more.signed.cid
    assert verify_index(s.ws, s.store, now=T0 + 200).ok
    # every envelope on the way lists the trust root, so key-pinned followers find it
    for signed in (result.signed, elsewhere.signed, picked.signed, more.signed):
        assert signed.roots == (s.ws.root,)


def test_commit_envelopes_list_the_trust_root() -> None:
    s = Setup(MAINT_A)
    assert s.init.head.roots == (s.init.root.cid,)
    pub = s.publish("app-misc/hello-1", b"hello")
    assert pub.attestation is not None
    s.add(pub.attestation.cid)
    done = s.commit(MAINT_A)
    assert done.head and done.signed.roots == (s.ws.root,)
    assert s.ws.head_commit is not None and s.ws.head_commit.roots == (s.ws.root,)


def test_sign_with_local_key_advances_the_draft() -> None:
    s = Setup(MAINT_A, MAINT_B, threshold=2, extra=(MAINT_C.key_id,))
    pub = s.publish("app-misc/hello-1", b"hello")
    assert pub.attestation is not None
    s.add(pub.attestation.cid)
    draft = s.commit(MAINT_A)
    done = chain.sign(s.ws, s.store, s.pins, draft.signed.cid, MAINT_B, now=T0 + 70)
    assert done.head and s.ws.head == done.signed.cid
    assert s.ws.head_commit is not None and s.ws.head_commit.height == 2


def test_non_maintainer_cannot_commit() -> None:
    s = Setup(MAINT_A)
    pub = s.publish("app-misc/hello-1", b"hello")
    assert pub.attestation is not None
    s.add(pub.attestation.cid)
    with pytest.raises(TrustError, match="is not a maintainer"):
        s.commit(MAINT_B)


def test_threshold_error_never_advances_head() -> None:
    # a commit under this index signed by one of two required keys cannot become the head
    s = Setup(MAINT_A, MAINT_B, threshold=2)
    pub = s.publish("app-misc/hello-1", b"hello")
    assert pub.attestation is not None
    s.add(pub.attestation.cid)
    draft = s.commit(MAINT_A)
    with pytest.raises(ThresholdError):
        chain._accept(s.ws, s.store, draft.signed, T0 + 70)


def test_reproducibility_groups_by_stated_bytes() -> None:
    store = MemoryBlockStore()
    desc = descriptor("app-misc/hello-1")
    x = publish(store, "app-misc/hello-1", b"one", BUILDER_X, desc=desc)
    y = publish(store, "app-misc/hello-1", b"one", BUILDER_Y, desc=desc)
    z = publish(store, "app-misc/hello-1", b"two", STRANGER, desc=desc)
    assert x.attestation and y.attestation and z.attestation
    view = reproducibility(
        [
            (x.attestation, (BUILDER_X.key_id,)),
            (y.attestation, (BUILDER_Y.key_id,)),
            (z.attestation, ()),
        ],
        manifest_sha256=x.manifest.sha256,
    )
    assert not view.agree
    assert view.outcomes[0].builders == tuple(sorted([BUILDER_X.key_id, BUILDER_Y.key_id]))
    assert view.outcomes[0].matches_manifest
    assert view.unverified == (z.attestation.cid,)
    assert reproducibility([]).summary() == "no builder attestation"


def test_export_git_one_commit_per_index_commit_and_incremental(tmp_path: Path) -> None:
    s = Setup(MAINT_A)
    one = s.publish("app-misc/hello-1", b"hello")
    assert one.attestation is not None
    (added,) = s.add(one.attestation.cid)
    s.commit(MAINT_A, "add hello")
    target = tmp_path / "audit"
    first = export_git(s.ws, s.store, target)
    assert first.exported == 2 and first.total == 2
    repo = pygit2.Repository(str(target))
    tip = repo.revparse_single(BRANCH)
    assert isinstance(tip, pygit2.Commit)
    assert tip.message.startswith("add hello\n\n")
    assert f"Ipfsbin-Commit: {history.resolve(s.ws, s.store, 'HEAD').commit_id}" in tip.message
    assert tip.author.email == f"{MAINT_A.key_id}@ipfsbin.invalid" and tip.author.name == "m0"
    text = (target / added.key).read_text()
    assert "state: ok" in text and "reproduced by 1 builder" in text

    assert export_git(s.ws, s.store, target).exported == 0
    curate.yank(s.ws, s.store, added.key, "broken")
    s.commit(MAINT_A, "yank", now=T0 + 120)
    again = export_git(s.ws, s.store, target)
    assert again.exported == 1 and again.total == 3
    assert "state: yanked" in (target / added.key).read_text()
    fresh = export_git(s.ws, s.store, tmp_path / "fresh")
    assert fresh.tip == again.tip  # deterministic


def test_export_refuses_a_foreign_directory(tmp_path: Path) -> None:
    s = Setup(MAINT_A)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("mine")
    with pytest.raises(IndexOperationError, match="neither empty nor a git repository"):
        export_git(s.ws, s.store, tmp_path / "x")


def test_staging_is_atomic_and_replaces_per_key() -> None:
    s = Setup(MAINT_A)
    pub = s.publish("app-misc/hello-1", b"hello")
    entry = IndexEntry.new(pub.manifest_cid)
    s.ws.stage([StagedChange(key="a", action="add", entry=entry)])
    s.ws.stage([StagedChange(key="a", action="yank", entry=entry.yanked("r"))])
    (only,) = s.ws.staged()
    assert only.action == "yank" and only.entry.state == "yanked"
    with pytest.raises(AttributeError):  # fails mid-batch: the first change is rolled back
        s.ws.stage([StagedChange(key="b", action="add", entry=entry), object()])  # type: ignore[list-item]
    assert [c.key for c in s.ws.staged()] == ["a"]
    assert s.ws.unstage() == 1


def test_sign_refuses_an_envelope_with_a_forged_signature_by_a_non_maintainer() -> None:
    # a signature outside the role counts for nothing, but merged into the head's envelope it
    # would ride along unchecked (and a follower refuses a commit carrying a revoked key's)
    s = Setup(MAINT_A, MAINT_B, threshold=2, extra=(MAINT_C.key_id,))
    pub = s.publish("app-misc/hello-1", b"hello")
    assert pub.attestation is not None
    s.add(pub.attestation.cid)
    draft = s.commit(MAINT_A).signed
    junk = Signature(key=STRANGER.key_id, sig=bytes(64))
    tampered = SignedCommit.create(draft.payload, [*draft.signatures, junk], roots=draft.roots)
    put_commit(s.store, tampered)
    with pytest.raises(SignatureError, match=f"{STRANGER.key_id}.*does not verify"):
        chain.sign(s.ws, s.store, s.pins, tampered.cid, MAINT_B, now=T0 + 70)
    assert s.ws.draft is not None and s.ws.draft.cid == draft.cid
