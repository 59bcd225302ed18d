"""The predicate's answer: mismatches, each a safety or a preference one, and the sharing policy.

A *safety* mismatch says the build may not run correctly on the host
(instruction set, ABI, runtime libraries, hardening floor, floating-point
results the host did not ask for): no policy accepts it. A *preference*
mismatch says the build runs correctly but is not what the host would have
built (``-O`` level, stricter floating-point semantics, code-only flags):
the client's :class:`SharingPolicy` says which of those it gives up
(schema/descriptor.md, section 5.1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "EXACT",
    "KINDS",
    "PREFERENCE_AXES",
    "SAME_ISA",
    "Compatibility",
    "Mismatch",
    "SharingPolicy",
]

KINDS: Final = ("safety", "preference")
PREFERENCE_AXES: Final = ("opt", "math", "flags")
"""The axes on which a mismatch may be a preference one (``math`` and ``flags``
also carry safety mismatches, in the direction that changes what programs do)."""

Kind = Literal["safety", "preference"]


@dataclass(frozen=True, kw_only=True)
class Mismatch:
    axis: str
    """One of ``compat.AXES``."""
    reason: str
    """A sentence for the user."""
    missing: tuple[str, ...] = ()
    """What the host lacks, sorted: CPU features (``isa``), sonames (``runtime``),
    hardening aspects (``hardening``); empty on the other axes."""
    source: str = ""
    """What asks for it: ``CFLAGS``, ``CXXFLAGS``, ``USE=cpu_flags_x86_avx2``,
    ``REQUIRES``, ``flags`` (runtime needs of the build flags); may be empty."""
    kind: Kind = "safety"
    """``safety`` (never accepted) or ``preference`` (a policy may accept it)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"mismatch kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "preference" and self.axis not in PREFERENCE_AXES:
            raise ValueError(f"axis {self.axis!r} carries no preference mismatches")

    def to_data(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "kind": self.kind,
            "reason": self.reason,
            "missing": list(self.missing),
            "source": self.source,
        }


@dataclass(frozen=True, kw_only=True)
class SharingPolicy:
    """Which preference axes a client lets differ from its own flags."""

    may_differ: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "may_differ", frozenset(self.may_differ))
        unknown = sorted(self.may_differ - set(PREFERENCE_AXES))
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} cannot differ by policy; "
                f"the axes that may are {', '.join(PREFERENCE_AXES)}"
            )

    @classmethod
    def parse(cls, value: str | Iterable[str]) -> SharingPolicy:
        """``"exact"``, ``"same-isa"`` or a list of :data:`PREFERENCE_AXES`; ``ValueError``."""
        if isinstance(value, str):
            if value == "exact":
                return EXACT
            if value == "same-isa":
                return SAME_ISA
            raise ValueError(
                f"{value!r} is not a sharing policy; expected exact, same-isa "
                f"or a list of {', '.join(PREFERENCE_AXES)}"
            )
        return cls(may_differ=frozenset(value))

    @property
    def name(self) -> str | list[str]:
        """As written in the config: ``exact``, ``same-isa`` or the sorted axes."""
        if not self.may_differ:
            return "exact"
        if self.may_differ == frozenset(PREFERENCE_AXES):
            return "same-isa"
        return [a for a in PREFERENCE_AXES if a in self.may_differ]

    def accepts(self, mismatch: Mismatch) -> bool:
        return mismatch.kind == "preference" and mismatch.axis in self.may_differ


EXACT: Final = SharingPolicy()
"""Every preference is kept: a build shares only with hosts whose flags it matches."""
SAME_ISA: Final = SharingPolicy(may_differ=frozenset(PREFERENCE_AXES))
"""Any optimization settings, as long as the build is safe here."""


@dataclass(frozen=True, kw_only=True)
class Compatibility:
    mismatches: tuple[Mismatch, ...]

    @property
    def ok(self) -> bool:
        """No mismatch at all: the build matches this host exactly (the ``exact`` policy)."""
        return not self.mismatches

    @property
    def safe(self) -> bool:
        """No safety mismatch: some policy (``same-isa``) accepts the build."""
        return not any(m.kind == "safety" for m in self.mismatches)

    def refusals(self, policy: SharingPolicy) -> tuple[Mismatch, ...]:
        """The mismatches ``policy`` does not accept (empty: the build may be installed)."""
        return tuple(m for m in self.mismatches if not policy.accepts(m))

    def accepted_differences(self, policy: SharingPolicy) -> tuple[Mismatch, ...]:
        """The preference mismatches ``policy`` accepts (what the build gives up)."""
        return tuple(m for m in self.mismatches if policy.accepts(m))

    def accepted(self, policy: SharingPolicy) -> bool:
        return not self.refusals(policy)

    @property
    def reasons(self) -> list[str]:
        return [m.reason for m in self.mismatches]

    @property
    def missing_features(self) -> tuple[str, ...]:
        """Every CPU feature the package needs and this host's CPU lacks, sorted."""
        return tuple(sorted({f for m in self.mismatches if m.axis == "isa" for f in m.missing}))

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form: ``{"ok", "safe", "mismatches": [Mismatch.to_data(), ...]}``."""
        return {
            "ok": self.ok,
            "safe": self.safe,
            "mismatches": [m.to_data() for m in self.mismatches],
        }
