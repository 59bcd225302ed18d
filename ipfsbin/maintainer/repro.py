"""The reproducibility view of an index entry: which builders attest to which bytes.

Attestations are grouped by what they state about the binpkg (sha256, size,
UnixFS CID). One group: "reproduced by N builders". Several: the builders
disagree, and the view lists who stands behind each result. Disagreement is
data for the maintainer, not an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ipfsbin.codec.cid import CID
from ipfsbin.index.entry import IndexEntry
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.attestation import Attestation
from ipfsbin.trust.signing import Role, check_signatures, load_signed_blocks

__all__ = ["Outcome", "ReproView", "entry_view", "load_attestations", "reproducibility"]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """One result some builders agree on, and the attestations that state it."""

    sha256: bytes
    size: int
    binpkg: CID
    builders: tuple[str, ...]
    attestations: tuple[CID, ...]
    matches_manifest: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256.hex(),
            "size": self.size,
            "binpkg": str(self.binpkg),
            "builders": list(self.builders),
            "attestations": [str(a) for a in self.attestations],
            "matches_manifest": self.matches_manifest,
        }


@dataclass(frozen=True, kw_only=True)
class ReproView:
    """Outcomes, largest group first; ``unverified`` lists attestations no builder key signed."""

    outcomes: tuple[Outcome, ...]
    unverified: tuple[CID, ...] = ()

    @property
    def agree(self) -> bool:
        return len(self.outcomes) == 1

    @property
    def builders(self) -> tuple[str, ...]:
        return tuple(sorted({b for o in self.outcomes for b in o.builders}))

    def summary(self) -> str:
        """``"reproduced by 2 builders"`` or ``"builders disagree: A, B -> sha256 x; C -> …"``."""
        if not self.outcomes:
            return "no builder attestation"
        if self.agree:
            count = len(self.outcomes[0].builders)
            return f"reproduced by {count} builder{'s' if count != 1 else ''}"
        parts = [
            f"{', '.join(o.builders) or '(no valid signer)'} -> sha256 {o.sha256.hex()[:16]}…"
            for o in self.outcomes
        ]
        return "builders disagree: " + "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "agree": self.agree,
            "outcomes": [o.to_json() for o in self.outcomes],
            "unverified": [str(c) for c in self.unverified],
        }


def reproducibility(
    attestations: Iterable[tuple[Attestation, tuple[str, ...]]],
    *,
    manifest_sha256: bytes | None = None,
) -> ReproView:
    """Group attestations (each with the key IDs whose signature is valid) by stated bytes."""
    groups: dict[tuple[bytes, int, CID], tuple[set[str], list[CID]]] = {}
    unverified: list[CID] = []
    for attestation, signers in attestations:
        statement = attestation.statement
        if not signers:
            unverified.append(attestation.cid)
        group = (statement.sha256, statement.size, statement.binpkg)
        builders, cids = groups.setdefault(group, (set(), []))
        builders.update(signers)
        cids.append(attestation.cid)
    outcomes = [
        Outcome(
            sha256=sha256,
            size=size,
            binpkg=binpkg,
            builders=tuple(sorted(builders)),
            attestations=tuple(sorted(cids)),
            matches_manifest=manifest_sha256 is not None and sha256 == manifest_sha256,
        )
        for (sha256, size, binpkg), (builders, cids) in groups.items()
    ]
    outcomes.sort(key=lambda o: (-len(o.builders), not o.matches_manifest, o.sha256))
    return ReproView(outcomes=tuple(outcomes), unverified=tuple(sorted(unverified)))


def load_attestations(
    store: BlockStore, links: Sequence[CID], builders: Role | None = None
) -> list[tuple[Attestation, tuple[str, ...]]]:
    """Each attestation envelope in ``links`` with its valid signers.

    With ``builders`` only that role's keys count; without, every signature
    that verifies against its own key ID does.
    """
    loaded = []
    for cid in links:
        envelope, payload = load_signed_blocks(store, cid)
        attestation = Attestation.from_blocks(envelope, payload, cid=cid)
        role = builders
        if role is None and attestation.signers:
            role = Role.of("builders", attestation.signers, 1)
        valid = check_signatures(attestation, role).valid if role is not None else ()
        loaded.append((attestation, valid))
    return loaded


def entry_view(
    store: BlockStore,
    entry: IndexEntry,
    *,
    manifest_sha256: bytes | None = None,
    builders: Role | None = None,
) -> ReproView:
    """The reproducibility view of ``entry``, reading its attestations from ``store``."""
    return reproducibility(
        load_attestations(store, entry.attestations, builders), manifest_sha256=manifest_sha256
    )
