"""Gentoo version comparison, enough for compiler and libc versions.

Follows the PMS algorithm (numeric components, a letter, suffixes with
numbers) but leaves out the ``-rN`` revision on purpose: a revision is a
packaging change and does not give a library new symbol versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Version", "compare_versions", "parse_version"]

_VERSION_RE = re.compile(
    r"^(?P<numbers>\d+(?:\.\d+)*)(?P<letter>[a-z]?)"
    r"(?P<suffixes>(?:_(?:alpha|beta|pre|rc|p)\d*)*)(?:-r(?P<revision>\d+))?$"
)
_SUFFIX_RE = re.compile(r"_(alpha|beta|pre|rc|p)(\d*)")
# Position of "no suffix" is between rc and p: 1.0_rc1 < 1.0 < 1.0_p1.
_SUFFIX_RANK = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "p": 5}
_NO_SUFFIX = 4


@dataclass(frozen=True, kw_only=True)
class Version:
    text: str
    numbers: tuple[str, ...]
    letter: str
    suffixes: tuple[tuple[int, int], ...]
    revision: int


def parse_version(text: str) -> Version:
    """Parse ``text``; raise ``ValueError`` when it is not a Gentoo version."""
    match = _VERSION_RE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a version (expected e.g. 13.2.1_p20240210 or 2.39-r6)")
    suffixes = tuple(
        (_SUFFIX_RANK[kind], int(number or "0"))
        for kind, number in _SUFFIX_RE.findall(match["suffixes"])
    )
    return Version(
        text=text,
        numbers=tuple(match["numbers"].split(".")),
        letter=match["letter"],
        suffixes=suffixes,
        revision=int(match["revision"] or "0"),
    )


def _cmp(a: int | str, b: int | str) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


def _compare_component(index: int, a: str, b: str) -> int:
    # PMS: later components with a leading zero compare as decimal fractions.
    if index > 0 and (a.startswith("0") or b.startswith("0")):
        return _cmp(a.rstrip("0"), b.rstrip("0"))
    return _cmp(int(a), int(b))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older, equal (ignoring -rN) or newer than ``b``."""
    va, vb = parse_version(a), parse_version(b)
    for index, (x, y) in enumerate(zip(va.numbers, vb.numbers, strict=False)):
        result = _compare_component(index, x, y)
        if result:
            return result
    result = _cmp(len(va.numbers), len(vb.numbers))
    if result:
        return result
    result = _cmp(va.letter, vb.letter)
    if result:
        return result
    length = max(len(va.suffixes), len(vb.suffixes))
    for i in range(length):
        sa = va.suffixes[i] if i < len(va.suffixes) else (_NO_SUFFIX, 0)
        sb = vb.suffixes[i] if i < len(vb.suffixes) else (_NO_SUFFIX, 0)
        result = _cmp(sa[0], sb[0]) or _cmp(sa[1], sb[1])
        if result:
            return result
    return 0
