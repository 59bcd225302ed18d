"""The Gentoo names and versions grammar, written once: category, package, version, CPV.

Names follow the Package Manager Specification ("Restrictions upon names");
a package name may not end in a hyphen and something that is a valid version.
Every module that reads a CPV, a dependency atom or a version builds on the
patterns here.

Version comparison follows the PMS algorithm (numeric components, a letter,
suffixes with numbers) but leaves out the ``-rN`` revision on purpose: a
revision is a packaging change and does not give a library new symbol
versions.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CATEGORY_PATTERN",
    "CP_PATTERN",
    "PACKAGE_PATTERN",
    "VERSION_PATTERN",
    "Version",
    "compare_versions",
    "is_category",
    "is_cp",
    "is_package",
    "is_version",
    "parse_version",
    "split_cpv",
]

CATEGORY_PATTERN: Final = r"[A-Za-z0-9_][A-Za-z0-9+_.-]*"
PACKAGE_PATTERN: Final = r"[A-Za-z0-9_][A-Za-z0-9+_-]*"
CP_PATTERN: Final = rf"{CATEGORY_PATTERN}/{PACKAGE_PATTERN}"
_SUFFIX_PATTERN: Final = r"_(?:alpha|beta|pre|rc|p)[0-9]*"
VERSION_PATTERN: Final = (
    rf"(?P<numbers>[0-9]+(?:\.[0-9]+)*)(?P<letter>[a-z]?)"
    rf"(?P<suffixes>(?:{_SUFFIX_PATTERN})*)(?:-r(?P<revision>[0-9]+))?"
)
"""A version; its named groups may appear once in any pattern that embeds it."""

_VERSION_RE: Final = re.compile(VERSION_PATTERN)
_CATEGORY_RE: Final = re.compile(CATEGORY_PATTERN)
_PACKAGE_RE: Final = re.compile(PACKAGE_PATTERN)
_CP_RE: Final = re.compile(CP_PATTERN)
_CPV_RE: Final = re.compile(
    rf"(?P<category>{CATEGORY_PATTERN})/(?P<package>{PACKAGE_PATTERN}?)"
    rf"-(?P<version>{VERSION_PATTERN})"
)
_SUFFIX_RE: Final = re.compile(r"_(alpha|beta|pre|rc|p)([0-9]*)")
# Position of "no suffix" is between rc and p: 1.0_rc1 < 1.0 < 1.0_p1.
_SUFFIX_RANK: Final = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "p": 5}
_NO_SUFFIX: Final = 4


@functools.lru_cache(maxsize=1 << 18)
def split_cpv(cpv: str) -> tuple[str, str, str]:
    """``"dev-libs/openssl-3.0.13-r1"`` -> ``("dev-libs", "openssl", "3.0.13-r1")``.

    ``ValueError`` when ``cpv`` is not category/package-version as Portage writes it.
    Cached: a catalog splits each of up to 10^5 CPVs several times per build.
    """
    match = _CPV_RE.fullmatch(cpv)
    if match is None:
        raise ValueError(f"{cpv!r} is not a CPV (category/package-version as Portage writes it)")
    category, package, version = match["category"], match["package"], match["version"]
    if _ends_like_version(package):
        raise ValueError(f"{cpv!r}: package name {package!r} ends like a version")
    return category, package, version


def is_category(text: str) -> bool:
    return _CATEGORY_RE.fullmatch(text) is not None


def is_package(text: str) -> bool:
    """A package name: the name pattern, not ending in ``-`` and a version."""
    return _PACKAGE_RE.fullmatch(text) is not None and not _ends_like_version(text)


def is_version(text: str) -> bool:
    return _VERSION_RE.fullmatch(text) is not None


def is_cp(text: str) -> bool:
    """``category/package`` with no version (``dev-libs/openssl``)."""
    return _CP_RE.fullmatch(text) is not None


def _ends_like_version(package: str) -> bool:
    head, _, tail = package.rpartition("-")
    return bool(head) and _VERSION_RE.fullmatch(tail) is not None


@dataclass(frozen=True, kw_only=True)
class Version:
    text: str
    numbers: tuple[str, ...]
    letter: str
    suffixes: tuple[tuple[int, int], ...]
    revision: int


def parse_version(text: str) -> Version:
    """Parse ``text``; raise ``ValueError`` when it is not a Gentoo version."""
    match = _VERSION_RE.fullmatch(text)
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


@functools.lru_cache(maxsize=4096)
def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older, equal (ignoring -rN) or newer than ``b``.

    Cached: a catalog compares the same compiler and libc versions once per build.
    """
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
