"""Read resolved ``:=`` dependencies and REQUIRES out of Portage's strings.

A small tokenizer instead of ``portage.dep``: this layer does not import
Portage (schema/descriptor.md, section 4.1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ipfsbin.descriptor.cpv import CP_PATTERN, VERSION_PATTERN
from ipfsbin.descriptor.model import SlotDep
from ipfsbin.errors import DescriptorError

__all__ = ["SlotAtom", "merge_slot_deps", "parse_requires", "slot_atoms"]

_ATOM_RE = re.compile(
    r"(?P<op>[<>]=?|=|~)?"
    rf"(?P<cp>{CP_PATTERN}?)"
    rf"(?:-(?P<version>{VERSION_PATTERN})"
    r"(?P<star>\*)?)?"
    r"(?::(?P<slot>[A-Za-z0-9_+.*/=-]*))?"
    r"(?:\[(?P<use>[^\]]*)\])?"
)


@dataclass(frozen=True, kw_only=True)
class SlotAtom:
    """One resolved ``:SLOT/SUBSLOT=`` atom and where it was found."""

    name: str
    slot: str
    subslot: str
    in_any_of: bool


def _atom_slot(word: str, *, in_any_of: bool, where: str) -> SlotAtom | None:
    match = _ATOM_RE.fullmatch(word)
    if match is None:
        raise DescriptorError(f"{where}: {word!r} is not a dependency atom")
    if bool(match["op"]) != bool(match["version"]):
        raise DescriptorError(f"{where}: {word!r} has a version without an operator or back")
    slot = match["slot"]
    if slot is None or not slot.endswith("="):
        return None  # no slot operator: not an ABI dependency
    slot = slot[:-1]
    if not slot:
        if in_any_of:
            return None  # an alternative that was not installed at build time
        raise DescriptorError(
            f"{where}: {word} has an unresolved := (Portage did not record what the "
            "package was built against)",
            hint="rebuild the package normally (not with --nodeps) before sharing it",
        )
    base, separator, subslot = slot.partition("/")
    if not base or (separator and not subslot) or "/" in subslot:
        raise DescriptorError(f"{where}: {word!r} has a malformed slot {slot!r}")
    return SlotAtom(name=match["cp"], slot=base, subslot=subslot or base, in_any_of=in_any_of)


def _walk(
    tokens: list[str],
    pos: int,
    *,
    active: bool,
    in_any_of: bool,
    use: frozenset[str],
    where: str,
    nested: bool,
) -> tuple[int, list[SlotAtom]]:
    found: list[SlotAtom] = []
    while pos < len(tokens):
        word = tokens[pos]
        if word == ")":
            if not nested:
                raise DescriptorError(f"{where}: unbalanced ')'")
            return pos + 1, found
        if word == "||" or word.endswith("?") or word == "(":
            group_active, group_any_of = active, in_any_of
            if word == "||":
                group_any_of = True
            elif word.endswith("?"):
                flag = word[:-1]
                negated = flag.startswith("!")
                flag = flag.removeprefix("!")
                if not flag:
                    raise DescriptorError(f"{where}: {word!r} is an empty USE condition")
                group_active = active and ((flag in use) != negated)
            if word != "(":
                pos += 1
                if pos >= len(tokens) or tokens[pos] != "(":
                    raise DescriptorError(f"{where}: {word!r} must be followed by '('")
            pos, inner = _walk(
                tokens,
                pos + 1,
                active=group_active,
                in_any_of=group_any_of,
                use=use,
                where=where,
                nested=True,
            )
            found.extend(inner)
            continue
        pos += 1
        if word.startswith("!"):
            continue  # blockers say nothing about what the package linked against
        if not active:
            continue  # a USE condition the build did not take
        atom = _atom_slot(word, in_any_of=in_any_of, where=where)
        if atom is not None:
            found.append(atom)
    if nested:
        raise DescriptorError(f"{where}: unbalanced '(' (missing ')')")
    return pos, found


def slot_atoms(text: str, *, use: Iterable[str], where: str = "dependency") -> list[SlotAtom]:
    """Every resolved ``:=`` atom in a dependency string, USE conditions evaluated."""
    _, found = _walk(
        text.split(),
        0,
        active=True,
        in_any_of=False,
        use=frozenset(use),
        where=where,
        nested=False,
    )
    return found


def merge_slot_deps(
    *, rdepend: str, depend: str, bdepend: str, use: Iterable[str]
) -> tuple[SlotDep, ...]:
    """The descriptor's ``deps``: merged by (name, slot, subslot), sorted."""
    enabled = frozenset(use)
    runtime: dict[tuple[str, str, str], bool] = {}
    for where, text in (("RDEPEND", rdepend), ("DEPEND", depend), ("BDEPEND", bdepend)):
        for atom in slot_atoms(text, use=enabled, where=where):
            key = (atom.name, atom.slot, atom.subslot)
            is_runtime = where == "RDEPEND" and not atom.in_any_of
            runtime[key] = runtime.get(key, False) or is_runtime
    return tuple(
        SlotDep(name=name, slot=slot, subslot=subslot, runtime=runtime[(name, slot, subslot)])
        for name, slot, subslot in sorted(runtime)
    )


def _requires_tokens(text: str) -> Iterator[tuple[str, str]]:
    category: str | None = None
    for word in text.split():
        if word.endswith(":"):
            category = word[:-1]
            if not category:
                raise DescriptorError("REQUIRES has an empty multilib category ':'")
            continue
        if category is None:
            raise DescriptorError(
                f"REQUIRES lists soname {word!r} before any multilib category "
                "(expected e.g. 'x86_64: libc.so.6')"
            )
        yield category, word


def parse_requires(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``x86_64: libc.so.6 x86_32: libc.so.6`` -> sorted (category, sonames) pairs."""
    sonames: dict[str, set[str]] = {}
    for category, soname in _requires_tokens(text):
        sonames.setdefault(category, set()).add(soname)
    return tuple((category, tuple(sorted(names))) for category, names in sorted(sonames.items()))
