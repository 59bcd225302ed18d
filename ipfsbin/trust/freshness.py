"""Is an accepted head still fresh? The freeze-attack check, without network.

A head was valid when it was accepted; it stays usable only while both its
commit and the newest trust root the follower accepted are unexpired.
Whoever holds only the publisher's IPNS key can keep re-signing a record that
points at an old head; the commit's expiry is what ends that. So every sync
(also one that finds nothing new) and every reader of the accepted head (the
binhost shim) asks :func:`check_freshness` with the clock, and refuses an
expired head unless the user switched the check off (``allow_stale``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from ipfsbin.codec.fields import rfc3339
from ipfsbin.errors import ExpiredError

__all__ = [
    "COMMIT_WARNING",
    "ROOT_WARNING",
    "Freshness",
    "FreshnessState",
    "check_freshness",
    "describe_span",
]

COMMIT_WARNING: Final = 2 * 24 * 3600
"""Warn this long before the head commit expires (commits live 7 days by default)."""
ROOT_WARNING: Final = 30 * 24 * 3600
"""Warn this long before the trust root expires (roots live 365 days by default)."""

FreshnessState = Literal["fresh", "expiring", "expired", "stale-allowed"]
_HINT: Final = (
    "the maintainers have not published a newer commit in time (or someone is keeping "
    "an old one in place: a freeze attack); sync again, and ask the maintainers; "
    "`allow_stale` (`--allow-stale`) uses the old packages on purpose, offline"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Freshness:
    """How the accepted head stands at ``now`` (all times Unix seconds)."""

    head_expires: int
    root_expires: int
    now: int
    allow_stale: bool = False

    @property
    def expires(self) -> int:
        """When the head stops being usable: the earlier of the commit's and the root's expiry."""
        return min(self.head_expires, self.root_expires)

    @property
    def seconds_left(self) -> int:
        return self.expires - self.now

    @property
    def expired(self) -> bool:
        return self.seconds_left <= 0

    @property
    def state(self) -> FreshnessState:
        if self.expired:
            return "stale-allowed" if self.allow_stale else "expired"
        if (
            self.head_expires - self.now <= COMMIT_WARNING
            or self.root_expires - self.now <= ROOT_WARNING
        ):
            return "expiring"
        return "fresh"

    @property
    def usable(self) -> bool:
        """May the head's packages be offered (fresh, expiring, or stale on purpose)?"""
        return self.state != "expired"

    def warning(self) -> str | None:
        """One line when the head expired or expires soon, else None."""
        parts = []
        for what, moment, margin in (
            ("head commit", self.head_expires, COMMIT_WARNING),
            ("trust root", self.root_expires, ROOT_WARNING),
        ):
            left = moment - self.now
            if left <= 0:
                parts.append(f"{what} expired at {rfc3339(moment)} ({describe_span(-left)} ago)")
            elif left <= margin:
                parts.append(f"{what} expires at {rfc3339(moment)} (in {describe_span(left)})")
        if not parts:
            return None
        tail = " (allow_stale is on: still used)" if self.expired and self.allow_stale else ""
        return "; ".join(parts) + tail

    def verify(self, what: str) -> None:
        """Raise :class:`ExpiredError` unless the head is usable; ``what`` names it."""
        if self.usable:
            return
        raise ExpiredError(
            f"{what}: {self.warning()}; now is {rfc3339(self.now)}",
            hint=_HINT,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "head_expires": self.head_expires,
            "root_expires": self.root_expires,
            "expires": self.expires,
            "seconds_left": self.seconds_left,
            "allow_stale": self.allow_stale,
            "warning": self.warning(),
        }


def check_freshness(
    *, head_expires: int, root_expires: int, now: int, allow_stale: bool = False
) -> Freshness:
    """The :class:`Freshness` of a head whose commit and root expire as given."""
    for name, value in (
        ("head_expires", head_expires),
        ("root_expires", root_expires),
        ("now", now),
    ):
        if type(value) is not int:
            raise TypeError(f"{name} must be an int (Unix seconds), not {type(value).__name__}")
    return Freshness(
        head_expires=head_expires, root_expires=root_expires, now=now, allow_stale=allow_stale
    )


def describe_span(seconds: int) -> str:
    """``"3 days 4 hours"``, ``"5 hours"``, ``"40 seconds"``: the largest unit and the next."""
    counts = []
    rest = max(0, int(seconds))
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, rest = divmod(rest, size)
        counts.append((count, name))
    first = next((i for i, (count, _) in enumerate(counts) if count), None)
    if first is None:
        return "0 seconds"
    return " ".join(f"{c} {n}{'' if c == 1 else 's'}" for c, n in counts[first : first + 2] if c)
