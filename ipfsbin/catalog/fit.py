"""Does one verified build fit this host and the client's policy? Reasons per axis.

:func:`check_fit` is the one call into the compatibility predicate
(:mod:`ipfsbin.descriptor.compat`), so changing the predicate changes this
function only. It maps the predicate's axes to the axes ``ipfsbin explain``
shows, and adds what the predicate does not know: ACCEPT_CHOSTS, yanked
entries and the client's builder policy.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from ipfsbin.descriptor.compat import HostProfile, check_compatible
from ipfsbin.descriptor.model import Package

__all__ = ["AXES", "PLATFORM_AXES", "Refusal", "check_fit", "check_policy"]

AXES: Final = (
    "yanked",
    "freshness",
    "policy",
    "chost",
    "microarchitecture",
    "compiler",
    "libc",
    "cflags",
    "hardening",
    "runtime",
    "use",
    "sub-slot",
    "unreadable",
    "delivery",
)
"""Why a candidate can be refused, in the order ``explain`` lists them."""
PLATFORM_AXES: Final = frozenset(
    {"chost", "microarchitecture", "compiler", "libc", "cflags", "hardening"}
)
"""Axes decided by the platform alone: every build of one platform shares them."""

_FROM_PREDICATE: Final = {
    "chost": "chost",
    "isa": "microarchitecture",
    "compiler": "compiler",
    "libc": "libc",
    "opt": "cflags",
    "math": "cflags",
    "flags": "cflags",
    "hardening": "hardening",
    "runtime": "runtime",
    "use": "use",
    "deps": "sub-slot",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Refusal:
    axis: str
    """One of :data:`AXES`."""
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"axis": self.axis, "reason": self.reason}


def check_fit(
    package: Package, host: HostProfile, *, accept_chosts: Collection[str] = ()
) -> list[Refusal]:
    """Every reason why ``package`` must not be installed on ``host`` (empty: it fits).

    A CHOST listed in ACCEPT_CHOSTS is accepted as Portage accepts it.
    """
    found: list[Refusal] = []
    for mismatch in check_compatible(package, host).mismatches:
        axis = _FROM_PREDICATE.get(mismatch.axis, mismatch.axis)
        if axis == "chost" and package.platform.chost in accept_chosts:
            continue
        found.append(Refusal(axis=axis, reason=mismatch.reason))
    return found


def check_policy(
    agreeing: Collection[str], *, min_builders: int, allowed: Collection[str]
) -> list[Refusal]:
    """The client's builder policy: enough agreeing builders, from the allowed ones.

    ``agreeing`` are the builder key IDs (of the trust root's builders role)
    whose valid attestation states exactly the manifest's bytes.
    """
    counted = [key for key in agreeing if not allowed or key in allowed]
    if len(counted) >= min_builders:
        return []
    which = "allowed builders" if allowed else "builders"
    return [
        Refusal(
            axis="policy",
            reason=f"{len(counted)} agreeing {which} attest these bytes, "
            f"policy.min_builders is {min_builders}",
        )
    ]
