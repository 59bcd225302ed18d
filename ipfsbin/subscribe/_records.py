"""The values the subscription state holds: a subscription as stored, and a head to record.

Kept apart from :mod:`.state` (the SQLite file) so a reader of the state
can decide about a head, :meth:`Subscription.freshness`, from the record alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ipfsbin.codec.cid import CID
from ipfsbin.trust.freshness import Freshness, check_freshness
from ipfsbin.trust.state import RootPin

__all__ = ["AcceptedHead", "Subscription"]


@dataclass(frozen=True, kw_only=True)
class AcceptedHead:
    """A head that passed every check, ready to be recorded."""

    head: CID
    head_envelope: CID
    height: int
    index_root: CID
    sequence: int
    roots: tuple[CID, ...]
    head_expires: int
    root_expires: int

    def __post_init__(self) -> None:
        if self.height < 1:
            raise ValueError(f"height must be >= 1, got {self.height}")
        if not self.roots:
            raise ValueError("an accepted head needs at least one trust root")


@dataclass(frozen=True, kw_only=True)
class Subscription:
    """One followed index as stored; times are Unix seconds (float)."""

    name: str
    pin: RootPin
    roots: tuple[CID, ...]
    head: CID | None = None
    head_envelope: CID | None = None
    height: int | None = None
    index_root: CID | None = None
    sequence: int | None = None
    accepted_at: float | None = None
    checked_at: float | None = None
    error: str | None = None
    error_at: float | None = None
    created_at: float = 0.0
    head_expires: int | None = None
    """Expiry of the accepted head's commit (Unix seconds)."""
    root_expires: int | None = None
    """Expiry of the newest accepted trust root."""
    roots_checked_at: float | None = None

    def __post_init__(self) -> None:
        if (self.head is None) != (self.height is None):
            raise ValueError("head and height are set together")
        # a key pin may start empty: the roots come from the first head's envelope
        if not self.roots and self.pin.key_id is None:
            raise ValueError(f"subscription {self.name} has no trust root to start from")

    def freshness(self, *, now: float, allow_stale: bool = False) -> Freshness | None:
        """Is the accepted head still usable at ``now``? None while its expiry is unknown.

        Reads only this record: the binhost shim asks it before offering the
        head's packages, without network (``schema/subscription.md``).
        """
        if self.head_expires is None or self.root_expires is None:
            return None
        return check_freshness(
            head_expires=self.head_expires,
            root_expires=self.root_expires,
            now=int(now),
            allow_stale=allow_stale,
        )

    def to_json(self, *, now: float | None = None) -> dict[str, object]:
        """Plain values for ``--json`` output; ``freshness`` as at ``now`` (default: the clock)."""
        fresh = self.freshness(now=time.time() if now is None else now)
        return {
            "name": self.name,
            "pin": self.pin.describe(),
            "roots": [str(r) for r in self.roots],
            "head": None if self.head is None else str(self.head),
            "head_envelope": None if self.head_envelope is None else str(self.head_envelope),
            "height": self.height,
            "index_root": None if self.index_root is None else str(self.index_root),
            "sequence": self.sequence,
            "accepted_at": self.accepted_at,
            "checked_at": self.checked_at,
            "error": self.error,
            "error_at": self.error_at,
            "head_expires": self.head_expires,
            "root_expires": self.root_expires,
            "roots_checked_at": self.roots_checked_at,
            "freshness": None if fresh is None else fresh.to_json(),
        }
