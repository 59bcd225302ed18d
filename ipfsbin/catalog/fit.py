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

from ipfsbin.descriptor.compat import HostProfile, PlatformVerdict, check_compatible
from ipfsbin.descriptor.model import Package
from ipfsbin.descriptor.verdict import EXACT, SAME_ISA, Mismatch, SharingPolicy

__all__ = ["AXES", "Fit", "Refusal", "check_fit", "check_policy"]

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
    kind: str | None = None
    """``safety`` or ``preference`` for the predicate's reasons; None for the others
    (yanked, freshness, builder policy, unreadable, delivery)."""
    accepted_by: str | None = None
    """For a preference: the ``policy.sharing`` setting that accepts it (TOML)."""

    def to_json(self) -> dict[str, str | None]:
        return {
            "axis": self.axis,
            "reason": self.reason,
            "kind": self.kind,
            "accepted_by": self.accepted_by,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Fit:
    """The predicate's verdict under the client's sharing policy."""

    refusals: tuple[Refusal, ...]
    """Why the build must not be installed here (empty: it may)."""
    differences: tuple[Refusal, ...]
    """Preferences of this host the build does not match, accepted by the policy."""


_FITS: Final = Fit(refusals=(), differences=())


def _accepted_by(mismatch: Mismatch) -> str | None:
    if mismatch.kind != "preference":
        return None
    return f'sharing = ["{mismatch.axis}"] or sharing = "{SAME_ISA.name}"'


def check_fit(
    package: Package,
    host: HostProfile,
    *,
    accept_chosts: Collection[str] = (),
    sharing: SharingPolicy = EXACT,
    platform: PlatformVerdict | None = None,
) -> Fit:
    """Why ``package`` must not be installed on ``host``, and what it gives up if it may.

    A CHOST listed in ACCEPT_CHOSTS is accepted as Portage accepts it;
    ``sharing`` says which of the host's preferences may differ;
    ``platform`` is the package's platform's verdict on ``host``, when known.
    """
    mismatches = check_compatible(package, host, platform=platform).mismatches
    if not mismatches:
        return _FITS
    refusals: list[Refusal] = []
    differences: list[Refusal] = []
    for mismatch in mismatches:
        axis = _FROM_PREDICATE.get(mismatch.axis, mismatch.axis)
        if axis == "chost" and package.platform.chost in accept_chosts:
            continue
        refusal = Refusal(
            axis=axis,
            reason=mismatch.reason,
            kind=mismatch.kind,
            accepted_by=_accepted_by(mismatch),
        )
        (differences if sharing.accepts(mismatch) else refusals).append(refusal)
    return Fit(refusals=tuple(refusals), differences=tuple(differences))


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
