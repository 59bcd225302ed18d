"""The audit view: mirror an index's commit chain into a real git repository.

One git commit per index commit, oldest first, on the branch ``ipfsbin``
(checked out, so the files can be read). The tree holds one file per entry
at the entry's index key; its content is a small, stable text rendering of
the entry with its manifest's summary and the reproducibility view, so
``git log -p``, ``git blame`` and ``git bisect`` work on the index.
Authors and committers are the commit's signers; the message is the commit
message followed by trailers naming the commit ID, envelope and signers.

Re-running is incremental: the ``Ipfsbin-Commit`` trailer of the branch tip
says which index commit was exported last, and only newer ones are added.
The same index always exports to the same git commit hashes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2

from ipfsbin.codec.cid import CID
from ipfsbin.errors import IndexOperationError
from ipfsbin.index.diff import diff
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.maintainer.repro import entry_view
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.manifest import Manifest
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.commit import Commit, SignedCommit, iter_history, load_commit_payload
from ipfsbin.trust.signing import Role, check_signatures

__all__ = ["BRANCH", "ExportResult", "export_git", "render_entry"]

BRANCH = "ipfsbin"
_REF = f"refs/heads/{BRANCH}"
_TRAILER = "Ipfsbin-Commit: "
_NOBODY = ("ipfsbin", "unsigned@ipfsbin.invalid")

Progress = Callable[[int, int], None]


@dataclass(frozen=True, kw_only=True)
class ExportResult:
    directory: Path
    exported: int
    total: int
    tip: str
    """Hex ID of the branch tip (the head's git commit)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "branch": BRANCH,
            "exported": self.exported,
            "total": self.total,
            "tip": self.tip,
        }


def render_entry(store: BlockStore, key: str, entry: IndexEntry, builders: Role) -> str:
    """The text a git file holds for one entry (stable: a function of linked blocks)."""
    manifest = Manifest.from_block(entry.manifest, store.get(entry.manifest))
    view = entry_view(store, entry, manifest_sha256=manifest.sha256, builders=builders)
    lines = [
        f"key: {key}",
        f"cpv: {manifest.cpv}",
        f"state: {entry.state}",
    ]
    if entry.reason:
        lines.append(f"reason: {entry.reason}")
    lines += [
        f"manifest: {entry.manifest}",
        f"descriptor: {manifest.descriptor}",
        f"binpkg: {manifest.binpkg}",
        f"format: {manifest.format}",
        f"size: {manifest.size}",
        f"sha256: {manifest.sha256.hex()}",
        f"build.chost: {manifest.build.chost}",
    ]
    if manifest.build.compiler is not None:
        compiler = manifest.build.compiler
        lines.append(f"build.compiler: {compiler.family}-{compiler.version}")
    for name in ("SLOT", "USE", "BUILD_TIME", "REPO"):
        if name in manifest.portage:
            lines.append(f"portage.{name}: {manifest.portage[name]}")
    lines.append(f"reproducibility: {view.summary()}")
    for outcome in view.outcomes:
        lines.append(
            f"  sha256 {outcome.sha256.hex()} size {outcome.size}: "
            f"{', '.join(outcome.builders) or '(no valid builder signature)'}"
        )
    lines.append("attestations:")
    lines += [f"  {link}" for link in entry.attestations]
    return "\n".join(lines) + "\n"


def _last_exported(repo: pygit2.Repository) -> tuple[CID | None, pygit2.Commit | None]:
    ref = repo.references.get(_REF)
    if ref is None:
        return None, None
    tip = repo[ref.target]
    assert isinstance(tip, pygit2.Commit)  # noqa: S101 - a branch points at a commit
    for line in reversed(tip.message.splitlines()):
        if line.startswith(_TRAILER):
            return CID.from_text(line[len(_TRAILER) :].strip()), tip
    raise IndexOperationError(
        f"the tip of branch {BRANCH} in {repo.path} has no {_TRAILER.strip()} trailer",
        hint="export into an empty directory",
    )


def _people(
    workspace: Workspace, signed: SignedCommit | None, role: Role
) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, email) of each valid signer, and the key IDs (both sorted by key ID)."""
    if signed is None:
        return [], []
    names = {key_id: name for name, key_id in workspace.key_names}
    valid = sorted(check_signatures(signed, role).valid)
    people = [(names.get(k, k[-12:]), f"{k}@ipfsbin.invalid") for k in valid]
    return people, valid


def _message(commit_id: CID, commit: Commit, signed: SignedCommit | None, keys: list[str]) -> str:
    trailers = [
        f"{_TRAILER}{commit_id}",
        f"Ipfsbin-Height: {commit.height}",
        f"Ipfsbin-Index: {commit.index}",
    ]
    if signed is not None:
        trailers.append(f"Ipfsbin-Envelope: {signed.cid}")
    trailers += [f"Ipfsbin-Signed-By: {k}" for k in keys]
    body = commit.message.strip() or "(no message)"
    return f"{body}\n\n" + "\n".join(trailers) + "\n"


def export_git(
    workspace: Workspace,
    store: BlockStore,
    directory: Path,
    *,
    progress: Progress | None = None,
) -> ExportResult:
    """Export the index commits not yet in ``directory`` (a git repository, made if absent)."""
    head = workspace.head_commit
    if head is None:
        raise IndexOperationError("the index has no commit to export")
    if directory.exists() and any(directory.iterdir()) and not (directory / ".git").exists():
        raise IndexOperationError(
            f"{directory} is neither empty nor a git repository",
            hint="give an empty or new directory, or one made by an earlier export",
        )
    repo = pygit2.init_repository(str(directory), bare=False, initial_head=BRANCH)
    last_id, tip = _last_exported(repo)
    todo: list[tuple[CID, Commit]] = []
    for commit_id, commit in iter_history(store, head.commit_id):
        if commit_id == last_id:
            break
        todo.append((commit_id, commit))
    else:
        if last_id is not None:
            raise IndexOperationError(
                f"the last exported commit {last_id} is not in this index's history",
                hint="export into a new directory",
            )
    todo.reverse()
    role = workspace.signed_root.root
    tree = ProllyTree(store)
    git_index = pygit2.Index()
    if tip is not None:
        git_index.read_tree(tip.tree)
    previous = None if last_id is None else load_commit_payload(store, last_id)
    for done, (commit_id, commit) in enumerate(todo, start=1):
        base = tree.empty() if previous is None else previous.index
        for change in diff(tree, base, commit.index):
            if change.new is None:
                git_index.remove(change.key)
                continue
            text = render_entry(store, change.key, IndexEntry.from_dag(change.new), role.builders)
            blob = repo.create_blob(text.encode("utf-8"))
            git_index.add(pygit2.IndexEntry(change.key, blob, pygit2.enums.FileMode.BLOB))
        tree_id = git_index.write_tree(repo)
        signed = workspace.envelope_of(commit_id)
        people, keys = _people(workspace, signed, role.maintainers)
        author_name, author_email = people[0] if people else _NOBODY
        committer_name, committer_email = people[-1] if people else _NOBODY
        author = pygit2.Signature(author_name, author_email, commit.time, 0)
        committer = pygit2.Signature(committer_name, committer_email, commit.time, 0)
        parents = [] if tip is None else [tip.id]
        oid = repo.create_commit(
            _REF, author, committer, _message(commit_id, commit, signed, keys), tree_id, parents
        )
        new_tip = repo[oid]
        assert isinstance(new_tip, pygit2.Commit)  # noqa: S101
        tip = new_tip
        previous = commit
        if progress is not None:
            progress(done, len(todo))
    assert tip is not None  # noqa: S101 - the history has at least the head
    repo.set_head(_REF)
    repo.checkout_head(strategy=pygit2.enums.CheckoutStrategy.FORCE)  # type: ignore[no-untyped-call]
    total = sum(1 for _ in repo.walk(tip.id))
    return ExportResult(directory=directory, exported=len(todo), total=total, tip=str(tip.id))
