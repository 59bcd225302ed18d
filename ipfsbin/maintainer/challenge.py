"""Challenge reports: do independent builds of one descriptor give the same bytes?

Modelled on ``guix challenge``: each item (a build, by index key) lists every
hash known for it (this host's own build, if any, and each builder's
attested sha256); an item is *identical* when at least two hashes are known
and all agree, *differing* when any two differ, and *inconclusive* when only
one is known. ``ipfsbin index pull`` and ``ipfsbin challenge`` both report
this way, and exit 2 when any item differs.

Builder hashes come from :func:`ipfsbin.maintainer.repro.reproducibility`,
which groups attestations by the bytes they state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from ipfsbin.maintainer.repro import ReproView

__all__ = ["DIFFERING_EXIT", "ChallengeItem", "ChallengeReport", "Verdict", "challenge_item"]

Verdict = Literal["identical", "differing", "inconclusive"]
DIFFERING_EXIT: Final = 2
"""Exit code of a command whose challenge report has a differing item."""


@dataclass(frozen=True, kw_only=True)
class ChallengeItem:
    """One build: ``local`` is this host's sha256 (None when not built here)."""

    cpv: str
    key: str
    builders: tuple[tuple[str, bytes], ...]
    local: bytes | None = None
    note: str = ""

    @property
    def hashes(self) -> tuple[bytes, ...]:
        found = [sha256 for _, sha256 in self.builders]
        return (self.local, *found) if self.local is not None else tuple(found)

    @property
    def verdict(self) -> Verdict:
        hashes = self.hashes
        if len(set(hashes)) > 1:
            return "differing"
        return "identical" if len(hashes) >= 2 else "inconclusive"

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.cpv,
            "key": self.key,
            "verdict": self.verdict,
            "local": None if self.local is None else self.local.hex(),
            "builders": [{"builder": b, "sha256": h.hex()} for b, h in self.builders],
            "note": self.note,
        }


def challenge_item(
    cpv: str, key: str, view: ReproView, *, local: bytes | None = None, note: str = ""
) -> ChallengeItem:
    """The item for ``view``'s attestations; attestations without a valid signer are left out."""
    builders = sorted((b, o.sha256) for o in view.outcomes for b in o.builders)
    return ChallengeItem(cpv=cpv, key=key, builders=tuple(builders), local=local, note=note)


@dataclass(frozen=True, kw_only=True)
class ChallengeReport:
    items: tuple[ChallengeItem, ...]

    @classmethod
    def of(cls, items: Iterable[ChallengeItem]) -> ChallengeReport:
        return cls(items=tuple(sorted(items, key=lambda i: (i.cpv, i.key))))

    def count(self, verdict: Verdict) -> int:
        return sum(1 for item in self.items if item.verdict == verdict)

    @property
    def exit_code(self) -> int:
        return DIFFERING_EXIT if self.count("differing") else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [item.to_json() for item in self.items],
            "summary": {
                "analyzed": len(self.items),
                "identical": self.count("identical"),
                "differing": self.count("differing"),
                "inconclusive": self.count("inconclusive"),
            },
        }
