"""What a size budget keeps: the most recently requested packages, the others dropped first.

Pins (``ipfsbin pin``) and prefetched packages are promises and are never
dropped for the budget; they count against it first. The installed
packages' builds kept to reinstall and to seed fill the rest, most recently
requested first (by the shim's request log); a package never requested
counts as the oldest. When even the promises pass the budget, every
installed build is dropped and the report says by how much the budget is
exceeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ipfsbin.codec.cid import CID

__all__ = ["Kept", "choose_within_budget"]


@dataclass(frozen=True, kw_only=True)
class Kept:
    """One package binpkg gc may keep: why, how big, and when it was last requested."""

    cpv: str
    binpkg: CID
    size: int
    why: str
    """``pin``, ``prefetch`` or ``installed``."""
    last_requested: float | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "cpv": self.cpv,
            "binpkg": str(self.binpkg),
            "size": self.size,
            "why": self.why,
            "last_requested": self.last_requested,
        }


def choose_within_budget(
    promised: Sequence[Kept], optional: Sequence[Kept], budget: int | None
) -> tuple[list[Kept], list[Kept]]:
    """(kept, dropped) of ``optional`` so that everything kept fits ``budget`` bytes.

    The least recently requested are dropped first (never requested first of
    all, then the bigger one on a tie); None keeps everything.
    """
    if budget is None:
        return list(optional), []
    total = sum(k.size for k in promised) + sum(k.size for k in optional)
    order = sorted(optional, key=lambda k: (k.last_requested or 0.0, -k.size, k.cpv))
    dropped: list[Kept] = []
    for candidate in order:
        if total <= budget:
            break
        dropped.append(candidate)
        total -= candidate.size
    gone = {id(k) for k in dropped}
    return [k for k in optional if id(k) not in gone], dropped
