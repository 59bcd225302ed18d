"""Accepting builders' work into an index, and yanking entries.

Everything a maintainer stages is checked first, so that a commit only ever
vouches for what was verified here:

- an attestation's signature against the trust root's ``builders`` role
  (one valid builder signature makes an attestation count; a forged
  signature by a builder key refuses it);
- that the attestation states what its manifest says (descriptor, binpkg,
  sha256, size);
- that the descriptor and platform blocks decode, and the descriptor's CPV
  is the manifest's;
- that the bytes behind the manifest's binpkg CID have the manifest's size,
  sha256, sha1 and md5 (streamed and hashed here, never trusted).

A batch either stages completely or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.descriptor.model import Descriptor, Platform
from ipfsbin.errors import IndexOperationError, SchemaError, SignatureError, TrustError
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import index_key, parse_index_key
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.maintainer.workspace import Action, StagedChange, Workspace
from ipfsbin.manifest import MANIFEST_TYPE, Manifest, verify_binpkg_bytes
from ipfsbin.store.base import BlockStore, get_value
from ipfsbin.trust.attestation import ATTESTATION_TYPE, Attestation, check_attestation
from ipfsbin.trust.signing import ENVELOPE_TYPE, Role, load_signed_blocks

__all__ = ["Accepted", "StagedAdd", "FileReader", "add", "current_entry", "yank"]

FileReader = Callable[[CID], Iterable[bytes]]
"""Streams the bytes of a UnixFS file by CID (``KuboClient.cat`` in production)."""


# -- add ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Accepted:
    """One manifest checked, with the attestation that brought it (if any)."""

    cid: CID
    key: str
    cpv: str
    manifest: CID
    attestation: CID | None
    builders: tuple[str, ...]
    unlisted: bool
    sha256: bytes
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": str(self.cid),
            "key": self.key,
            "cpv": self.cpv,
            "manifest": str(self.manifest),
            "attestation": None if self.attestation is None else str(self.attestation),
            "builders": list(self.builders),
            "unlisted_builder": self.unlisted,
            "sha256": self.sha256.hex(),
            "size": self.size,
        }


@dataclass(frozen=True, kw_only=True)
class StagedAdd:
    """What one ``add`` staged, per index key."""

    key: str
    action: Action | None
    """None when the entry was already as it would become (nothing staged)."""
    entry: IndexEntry
    accepted: tuple[Accepted, ...]
    disagree: bool = False
    """Some attestation states other bytes than the entry's manifest."""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "action": self.action or "unchanged",
            "manifest": str(self.entry.manifest),
            "attestations": [str(a) for a in self.entry.attestations],
            "state": self.entry.state,
            "disagree": self.disagree,
            "accepted": [a.to_json() for a in self.accepted],
        }


def _kind(store: BlockStore, cid: CID) -> str:
    value = get_value(store, cid)
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == ENVELOPE_TYPE:
        return "envelope"
    if kind == MANIFEST_TYPE:
        return "manifest"
    raise IndexOperationError(
        f"{cid} is neither a manifest nor an attestation (its type is {kind!r})",
        hint="pass the attestation CIDs `ipfsbin publish` printed",
    )


def _check_manifest(store: BlockStore, read: FileReader, manifest_cid: CID) -> tuple[Manifest, str]:
    """The manifest and its index key, after checking its links and bytes."""
    try:
        manifest = Manifest.from_block(manifest_cid, store.get(manifest_cid))
        descriptor = Descriptor.from_block(manifest.descriptor, store.get(manifest.descriptor))
        platform = Platform.from_block(descriptor.platform, store.get(descriptor.platform))
    except SchemaError as exc:
        raise SchemaError(f"manifest {manifest_cid}: {exc.message}", hint=exc.hint) from exc
    if descriptor.cpv != manifest.cpv:
        raise TrustError(
            f"manifest {manifest_cid} is for {manifest.cpv}, but its descriptor "
            f"{manifest.descriptor} describes {descriptor.cpv}"
        )
    verify_binpkg_bytes(manifest, manifest_cid, read(manifest.binpkg))
    try:
        key = index_key(platform.cid, descriptor.cpv, descriptor.cid)
    except ValueError as exc:
        raise SchemaError(f"manifest {manifest_cid}: {exc}") from exc
    return manifest, key


def _check_attestation(
    store: BlockStore, cid: CID, builders: Role, *, allow_unlisted_builder: bool
) -> tuple[Attestation, tuple[str, ...], bool]:
    """The attestation, its valid builder signers, and whether they are unlisted builders."""
    envelope, payload = load_signed_blocks(store, cid)
    value = dagcbor.decode(payload)
    kind = value.get("type") if isinstance(value, dict) else None
    if kind != ATTESTATION_TYPE:
        raise IndexOperationError(
            f"{cid} is a signed {kind!r}, not an attestation",
            hint="pass the attestation CIDs `ipfsbin publish` printed",
        )
    attestation = Attestation.from_blocks(envelope, payload, cid=cid)
    if not attestation.signatures:
        raise TrustError(f"attestation {cid} carries no signature")
    report = check_attestation(attestation, role=builders).report
    if report.invalid:
        raise SignatureError(
            f"attestation {cid}: signature by {', '.join(report.invalid)} does not verify "
            "(expected a valid ed25519 signature over the 'ipfsbin-attestation-v1:' domain)",
            hint="the attestation was altered or forged; do not accept it",
        )
    if report.valid:
        return attestation, report.valid, False
    signers = ", ".join(attestation.signers)
    if not allow_unlisted_builder:
        raise TrustError(
            f"attestation {cid} is signed by {signers}, which the trust root does not list "
            "as a builder",
            hint="add the builder to the root's builders, or pass --allow-unlisted-builder",
        )
    own = check_attestation(attestation).report
    if own.invalid:
        raise SignatureError(
            f"attestation {cid}: signature by {', '.join(own.invalid)} does not verify",
            hint="the attestation was altered or forged; do not accept it",
        )
    return attestation, own.valid, True


def current_entry(
    workspace: Workspace, tree: ProllyTree, key: str
) -> tuple[IndexEntry | None, bool]:
    """The entry as staged, else as in the head; and whether the head has the key."""
    head = workspace.head_commit
    in_head: IndexEntry | None = None
    if head is not None:
        value = tree.get(head.commit.index, key)
        if value is not None:
            in_head = IndexEntry.from_dag(value)
    staged = workspace.staged_entry(key)
    return (staged if staged is not None else in_head), in_head is not None


def add(
    workspace: Workspace,
    store: BlockStore,
    read: FileReader,
    cids: Sequence[CID],
    *,
    allow_unlisted_builder: bool = False,
    allow_unattested: bool = False,
) -> list[StagedAdd]:
    """Check attestations (or bare manifests) and stage them, all or nothing.

    Several attestations for one key are merged into one entry; the entry
    keeps the manifest it had (or the first one seen). An attestation of
    other bytes for the same build is kept as data (``disagree``).
    """
    if not cids:
        raise ValueError("no CIDs given")
    builders = workspace.signed_root.root.builders
    checked: dict[CID, tuple[Manifest, str]] = {}
    accepted: list[Accepted] = []
    seen: set[CID] = set()
    for cid in cids:
        if cid in seen:
            continue
        seen.add(cid)
        if _kind(store, cid) == "manifest":
            if not allow_unattested:
                raise TrustError(
                    f"{cid} is a manifest without a builder attestation",
                    hint="pass the attestation CID instead, or --allow-unattested to vouch "
                    "for it with the maintainers' signatures alone",
                )
            attestation: Attestation | None = None
            signers: tuple[str, ...] = ()
            manifest_cid, unlisted = cid, False
        else:
            attestation, signers, unlisted = _check_attestation(
                store, cid, builders, allow_unlisted_builder=allow_unlisted_builder
            )
            manifest_cid = attestation.statement.manifest
        if manifest_cid not in checked:
            checked[manifest_cid] = _check_manifest(store, read, manifest_cid)
        manifest, key = checked[manifest_cid]
        if attestation is not None:
            problems = check_attestation(
                attestation, role=builders, manifest=(manifest_cid, manifest)
            ).problems
            if problems:
                raise TrustError(
                    f"attestation {cid} does not match manifest {manifest_cid}: "
                    + "; ".join(problems),
                    hint="the builder signed other bytes than the manifest describes",
                )
        accepted.append(
            Accepted(
                cid=cid,
                key=key,
                cpv=manifest.cpv,
                manifest=manifest_cid,
                attestation=None if attestation is None else cid,
                builders=signers,
                unlisted=unlisted,
                sha256=manifest.sha256,
                size=manifest.size,
            )
        )
    tree = ProllyTree(store)
    by_key: dict[str, list[Accepted]] = {}
    for item in accepted:
        by_key.setdefault(item.key, []).append(item)
    results: list[StagedAdd] = []
    changes: list[StagedChange] = []
    for key, items in by_key.items():
        current, in_head = current_entry(workspace, tree, key)
        entry = current
        for item in items:
            links = () if item.attestation is None else (item.attestation,)
            if entry is None:
                entry = IndexEntry.new(item.manifest, links)
            else:
                entry = IndexEntry(
                    manifest=entry.manifest,
                    attestations=tuple(set(entry.attestations) | set(links)),
                    state=entry.state,
                    reason=entry.reason,
                )
        assert entry is not None  # noqa: S101 - every key has at least one item
        entry_sha256 = _manifest_sha256(store, checked, entry.manifest)
        disagree = any(checked[i.manifest][0].sha256 != entry_sha256 for i in items)
        action: Action | None = None
        if entry != current:
            action = "merge" if in_head else "add"
            changes.append(StagedChange(key=key, action=action, entry=entry))
        results.append(
            StagedAdd(key=key, action=action, entry=entry, accepted=tuple(items), disagree=disagree)
        )
    workspace.stage(changes)
    return results


def _manifest_sha256(
    store: BlockStore, checked: dict[CID, tuple[Manifest, str]], manifest_cid: CID
) -> bytes:
    found = checked.get(manifest_cid)
    if found is not None:
        return found[0].sha256
    return Manifest.from_block(manifest_cid, store.get(manifest_cid)).sha256


# -- yank ---------------------------------------------------------------------------------


def yank(workspace: Workspace, store: BlockStore, key: str, reason: str) -> StagedChange:
    """Stage ``key`` as yanked with ``reason`` (clients never serve yanked entries)."""
    parse_index_key(key)
    reason = " ".join(reason.split())
    if not reason:
        raise IndexOperationError(
            "a yank needs a reason", hint='pass --reason "why it is withdrawn"'
        )
    current, _ = current_entry(workspace, ProllyTree(store), key)
    if current is None:
        raise IndexOperationError(
            f"no entry {key} in the head or among the staged changes",
            hint="`ipfsbin index show` lists the keys",
        )
    change = StagedChange(key=key, action="yank", entry=current.yanked(reason))
    workspace.stage([change])
    return change
