"""Dependency strings and REQUIRES: schema/descriptor.md, sections 4.1 and 4.2."""

from __future__ import annotations

import pytest

from ipfsbin.descriptor import SlotDep, merge_slot_deps, parse_requires, slot_atoms
from ipfsbin.errors import DescriptorError


def _atoms(text: str, use: str = "") -> list[tuple[str, str, str, bool]]:
    return [(a.name, a.slot, a.subslot, a.in_any_of) for a in slot_atoms(text, use=use.split())]


ATOMS = [
    (">=dev-libs/libfoo-1.2:0/1=", "", [("dev-libs/libfoo", "0", "1", False)]),
    ("dev-libs/B:0/1=[foo]", "", [("dev-libs/B", "0", "1", False)]),
    ("dev-libs/B:0/1=[foo,-bar,baz(+)?]", "", [("dev-libs/B", "0", "1", False)]),
    ("=dev-lang/python-3.12*:3.12/3.12=", "", [("dev-lang/python", "3.12", "3.12", False)]),
    ("~dev-libs/x-1.0_rc2-r1:2=", "", [("dev-libs/x", "2", "2", False)]),
    ("x11-libs/gtk+:3/3=", "", [("x11-libs/gtk+", "3", "3", False)]),
    ("dev-libs/A:0 dev-libs/B:* dev-libs/C", "", []),
    ("ssl? ( dev-libs/openssl:0/3= )", "ssl", [("dev-libs/openssl", "0", "3", False)]),
    ("ssl? ( dev-libs/openssl:0/3= )", "", []),
    ("!ssl? ( dev-libs/nettle:0/8= )", "", [("dev-libs/nettle", "0", "8", False)]),
    ("!ssl? ( dev-libs/nettle:0/8= )", "ssl", []),
    ("a? ( b? ( dev-libs/X:1/2= ) )", "a", []),
    ("a? ( b? ( dev-libs/X:1/2= ) )", "a b", [("dev-libs/X", "1", "2", False)]),
    ("|| ( dev-libs/C:2/2.1= dev-libs/D:= )", "", [("dev-libs/C", "2", "2.1", True)]),
    ("|| ( ( dev-libs/C:2/2.1= dev-libs/E ) dev-libs/D )", "", [("dev-libs/C", "2", "2.1", True)]),
    ("gtk? ( x11-libs/gtk+:= )", "", []),  # a condition not taken may stay unresolved
    ("!dev-libs/E:0/1= !!dev-libs/F", "", []),
    ("( dev-libs/G:0/4= )", "", [("dev-libs/G", "0", "4", False)]),
    ("", "", []),
]


@pytest.mark.parametrize(("text", "use", "expected"), ATOMS)
def test_slot_atoms(text: str, use: str, expected: list[tuple[str, str, str, bool]]) -> None:
    assert _atoms(text, use) == expected


BAD = [
    ("dev-libs/A:=", "unresolved :="),
    ("ssl? ( dev-libs/A:0/1= ", "unbalanced '('"),
    ("dev-libs/A:0/1= )", "unbalanced ')'"),
    ("ssl? dev-libs/A:0/1=", "must be followed by '('"),
    ("|| dev-libs/A", "must be followed by '('"),
    ("libfoo:0/1=", "is not a dependency atom"),
    ("dev-libs/foo-1.2:0/1=", "version without an operator"),
    (">=dev-libs/foo:0/1=", "version without an operator"),
    ("dev-libs/foo:0/=", "malformed slot"),
    ("? ( dev-libs/foo )", "empty USE condition"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD)
def test_malformed_dependency_strings(text: str, fragment: str) -> None:
    with pytest.raises(DescriptorError) as info:
        slot_atoms(text, use=["ssl"], where="RDEPEND")
    assert fragment in info.value.message
    assert info.value.message.startswith("RDEPEND: ")


def test_unresolved_slot_operator_has_hint() -> None:
    with pytest.raises(DescriptorError) as info:
        slot_atoms("dev-libs/A:=", use=[])
    assert info.value.hint is not None and "--nodeps" in info.value.hint


def test_merge_marks_runtime_and_sorts() -> None:
    deps = merge_slot_deps(
        rdepend="dev-libs/z:0/1= || ( dev-libs/a:1/2= dev-libs/b )",
        depend="dev-libs/z:0/1= dev-libs/a:1/2= dev-libs/m:3/3=",
        bdepend="dev-util/tool:0/9=",
        use=[],
    )
    assert deps == (
        SlotDep(name="dev-libs/a", slot="1", subslot="2", runtime=False),
        SlotDep(name="dev-libs/m", slot="3", subslot="3", runtime=False),
        SlotDep(name="dev-libs/z", slot="0", subslot="1", runtime=True),
        SlotDep(name="dev-util/tool", slot="0", subslot="9", runtime=False),
    )


def test_merge_keeps_two_slots_of_one_package() -> None:
    deps = merge_slot_deps(
        rdepend="dev-lang/python:3.11/3.11= dev-lang/python:3.12/3.12=",
        depend="",
        bdepend="",
        use=[],
    )
    assert [(d.slot, d.subslot) for d in deps] == [("3.11", "3.11"), ("3.12", "3.12")]


def test_parse_requires() -> None:
    assert parse_requires("x86_64: libm.so.6 libc.so.6 x86_32: libc.so.6 x86_64: libc.so.6\n") == (
        ("x86_32", ("libc.so.6",)),
        ("x86_64", ("libc.so.6", "libm.so.6")),
    )
    assert parse_requires("") == ()
    assert parse_requires("x86_64:") == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("libc.so.6", "before any multilib category"), (": libc.so.6", "empty multilib category")],
)
def test_parse_requires_refuses(text: str, fragment: str) -> None:
    with pytest.raises(DescriptorError) as info:
        parse_requires(text)
    assert fragment in info.value.message
