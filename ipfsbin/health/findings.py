"""One finding per check: what was seen, how bad it is, and the command that fixes it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["Finding", "Report", "Status"]

Status = Literal["ok", "info", "warn", "fail"]
_ORDER: Final = {"fail": 0, "warn": 1, "info": 2, "ok": 3}


@dataclass(frozen=True, kw_only=True)
class Finding:
    check: str
    """A stable name scripts can match: ``kubo``, ``head:<name>``, ``binrepos``…"""
    status: Status
    message: str
    fix: str | None = None
    """A command (or the step) that clears the finding; None when nothing is wrong."""

    @property
    def wrong(self) -> bool:
        """Whether this finding makes ``doctor`` fail (``info`` only describes)."""
        return self.status in ("warn", "fail")

    def to_json(self) -> dict[str, str | None]:
        return {
            "check": self.check,
            "status": self.status,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True, kw_only=True)
class Report:
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> Report:
        return cls(findings=tuple(findings))

    @property
    def ok(self) -> bool:
        return not any(f.wrong for f in self.findings)

    def worst_first(self) -> tuple[Finding, ...]:
        return tuple(sorted(self.findings, key=lambda f: _ORDER[f.status]))

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "findings": [f.to_json() for f in self.findings]}
