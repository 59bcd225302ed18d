"""The hardening a build has, as its compiler reports it (schema/descriptor.md, section 3.5).

Read from the compiler's answer for the build's flags, so that a toolchain's
defaults (Gentoo's GCC enables ``-fstack-protector-strong``,
``_FORTIFY_SOURCE``, stack-clash protection and PIE by itself) count as
well as the flags written in make.conf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ipfsbin.codec.fields import get_list, get_str, kind_of
from ipfsbin.descriptor.toolchain import CompilerAnswer
from ipfsbin.errors import SchemaError

__all__ = ["AUTO_VAR_INIT", "STACK_PROTECTOR", "Hardening", "Shortfall"]

STACK_PROTECTOR = ("none", "explicit", "basic", "strong", "all")
"""Weakest first."""
AUTO_VAR_INIT = ("uninitialized", "pattern", "zero")
"""``pattern`` and ``zero`` both leave no stack variable uninitialized: equal rank."""
CF_PROTECTION = ("branch", "return")
_KEYS = ("stack_protector", "fortify", "stack_clash", "cf_protection", "auto_var_init", "pie")


@dataclass(frozen=True, kw_only=True)
class Shortfall:
    """One way a build is less hardened than a host asks."""

    aspect: str
    """One of the Hardening field names."""
    built: str
    wanted: str


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(f"{what} must be a bool, got {kind_of(value)}")
    return value


@dataclass(frozen=True, kw_only=True)
class Hardening:
    stack_protector: str
    """One of :data:`STACK_PROTECTOR`."""
    fortify: int
    """``_FORTIFY_SOURCE`` level in effect (0 when unset or not optimizing)."""
    stack_clash: bool
    cf_protection: tuple[str, ...]
    """Sorted subset of ``branch`` (x86 IBT, AArch64 BTI), ``return`` (shadow stack, PAC)."""
    auto_var_init: str
    """One of :data:`AUTO_VAR_INIT`."""
    pie: bool

    def __post_init__(self) -> None:
        if self.stack_protector not in STACK_PROTECTOR:
            raise ValueError(
                f"stack_protector {self.stack_protector!r} is not one of {STACK_PROTECTOR}"
            )
        if not isinstance(self.fortify, int) or isinstance(self.fortify, bool):
            raise TypeError("fortify must be an int")
        if not 0 <= self.fortify <= 3:
            raise ValueError(f"fortify {self.fortify} is not 0..3")
        if list(self.cf_protection) != sorted(set(self.cf_protection)) or not set(
            self.cf_protection
        ) <= set(CF_PROTECTION):
            raise ValueError(f"cf_protection must be a sorted subset of {CF_PROTECTION}")
        if self.auto_var_init not in AUTO_VAR_INIT:
            raise ValueError(f"auto_var_init {self.auto_var_init!r} is not one of {AUTO_VAR_INIT}")

    @classmethod
    def from_answer(cls, answer: CompilerAnswer) -> Hardening:
        macros, options = answer.macros, answer.options
        ssp = "none"
        for macro, level in (
            ("__SSP__", "basic"),
            ("__SSP_EXPLICIT__", "explicit"),
            ("__SSP_STRONG__", "strong"),
            ("__SSP_ALL__", "all"),
        ):
            if macro in macros:
                ssp = level
        fortify = 0
        if "__OPTIMIZE__" in macros and macros.get("_FORTIFY_SOURCE", "").strip().isdigit():
            fortify = min(int(macros["_FORTIFY_SOURCE"]), 3)
        cet = int(macros.get("__CET__", "0") or "0")
        cf = set()
        if cet & 1 or "__ARM_FEATURE_BTI_DEFAULT" in macros:
            cf.add("branch")
        if cet & 2 or "__ARM_FEATURE_PAC_DEFAULT" in macros:
            cf.add("return")
        init = options.get("-ftrivial-auto-var-init", "uninitialized") or "uninitialized"
        return cls(
            stack_protector=ssp,
            fortify=fortify,
            stack_clash=options.get("-fstack-clash-protection") == "[enabled]",
            cf_protection=tuple(sorted(cf)),
            auto_var_init=init if init in AUTO_VAR_INIT else "uninitialized",
            pie="__PIE__" in macros,
        )

    def shortfalls(self, wanted: Hardening) -> list[Shortfall]:
        """Where this build is less hardened than ``wanted`` (a host's own)."""
        found: list[Shortfall] = []

        def short(aspect: str, built: object, want: object) -> None:
            found.append(Shortfall(aspect=aspect, built=str(built), wanted=str(want)))

        rank = STACK_PROTECTOR.index
        if rank(self.stack_protector) < rank(wanted.stack_protector):
            short("stack_protector", self.stack_protector, wanted.stack_protector)
        if self.fortify < wanted.fortify:
            short("fortify", self.fortify, wanted.fortify)
        if wanted.stack_clash and not self.stack_clash:
            short("stack_clash", "off", "on")
        missing = set(wanted.cf_protection) - set(self.cf_protection)
        if missing:
            short(
                "cf_protection", ",".join(self.cf_protection) or "none", ",".join(sorted(missing))
            )
        if (self.auto_var_init == "uninitialized") and wanted.auto_var_init != "uninitialized":
            short("auto_var_init", self.auto_var_init, wanted.auto_var_init)
        if wanted.pie and not self.pie:
            short("pie", "off", "on")
        return found

    def to_dag(self) -> dict[str, Any]:
        return {
            "stack_protector": self.stack_protector,
            "fortify": self.fortify,
            "stack_clash": self.stack_clash,
            "cf_protection": list(self.cf_protection),
            "auto_var_init": self.auto_var_init,
            "pie": self.pie,
        }

    @classmethod
    def from_dag(cls, value: Any) -> Hardening:
        if not isinstance(value, dict):
            raise SchemaError(f"hardening must be a map, got {kind_of(value)}")
        if set(value) != set(_KEYS):
            raise SchemaError(f"hardening must have exactly the fields {', '.join(_KEYS)}")
        fortify = value["fortify"]
        if not isinstance(fortify, int) or isinstance(fortify, bool):
            raise SchemaError(f"hardening fortify must be an int, got {kind_of(fortify)}")
        try:
            return cls(
                stack_protector=get_str(value["stack_protector"], "stack_protector"),
                fortify=fortify,
                stack_clash=_bool(value["stack_clash"], "stack_clash"),
                cf_protection=tuple(
                    get_str(v, "cf_protection") for v in get_list(value["cf_protection"], "cf")
                ),
                auto_var_init=get_str(value["auto_var_init"], "auto_var_init"),
                pie=_bool(value["pie"], "pie"),
            )
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"invalid hardening: {exc}") from exc
