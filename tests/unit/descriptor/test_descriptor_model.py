"""Platform/Descriptor values, their DAG form, and versions."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import ipfsbin.descriptor
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.descriptor import (
    BuildFacts,
    Descriptor,
    Hardening,
    OptProfile,
    Package,
    Platform,
    SlotDep,
    normalize,
    split_cpv,
)
from ipfsbin.descriptor.cpv import compare_versions
from ipfsbin.errors import BlockMismatchError, DescriptorError, SchemaError

NO_HARDENING = Hardening(
    stack_protector="none",
    fortify=0,
    stack_clash=False,
    cf_protection=(),
    auto_var_init="uninitialized",
    pie=False,
)

FACTS = BuildFacts(
    chost="x86_64-pc-linux-gnu",
    arch="amd64",
    profile="default/linux/amd64/23.0",
    libc="glibc",
    libc_version="2.39-r6",
    compiler="gcc",
    compiler_version="13.2.1_p20240210",
    cflags="-O2 -march=haswell -pipe",
    cxxflags="-O2 -march=haswell -pipe",
    ldflags="-Wl,-O1 -Wl,--as-needed",
    cpv="dev-libs/libfoo-1.2.3-r1",
    slot="0/1.2",
    repository="gentoo",
    eapi="8",
    use="amd64 ssl",
    iuse="+ssl test",
    iuse_effective="amd64 ssl test",
    rdepend="dev-libs/openssl:0/3=",
    requires="x86_64: libc.so.6",
)


@pytest.fixture(scope="module")
def package() -> Package:
    return normalize(FACTS)


def test_public_names_are_pinned() -> None:
    assert sorted(ipfsbin.descriptor.__all__) == sorted(
        [
            "AXES",
            "CODE_ONLY_FLAGS",
            "CONSERVATIVE_FLAGS",
            "DESCRIPTOR_TYPE",
            "EXACT",
            "OPTIMIZATION_FLAGS",
            "OPT_LEVELS",
            "PLATFORM_TYPE",
            "PREFERENCE_AXES",
            "SAME_ISA",
            "BuildFacts",
            "CompilerAnswer",
            "Compatibility",
            "Descriptor",
            "CompilerProbe",
            "Hardening",
            "HostProfile",
            "Mismatch",
            "OptProfile",
            "Package",
            "Platform",
            "Probe",
            "SharingPolicy",
            "Shortfall",
            "SlotAtom",
            "SlotDep",
            "UseConfig",
            "check_compatible",
            "check_platform",
            "chost_family",
            "host_cpu_features",
            "is_code_only",
            "isa_label",
            "lacking",
            "merge_slot_deps",
            "normalize",
            "normalize_cflags",
            "normalize_ldflags",
            "normalize_platform",
            "parse_requires",
            "runtime_needs",
            "slot_atoms",
            "split_cpv",
            "target_cpu_features",
            "verify_compatible",
        ]
    )


def test_same_facts_same_cids(package: Package) -> None:
    again = normalize(dataclasses.replace(FACTS))
    assert again.descriptor.cid == package.descriptor.cid
    assert again.platform.cid == package.platform.cid


def test_changed_use_changes_descriptor_not_platform(package: Package) -> None:
    other = normalize(dataclasses.replace(FACTS, use="amd64"))
    assert other.platform.cid == package.platform.cid
    assert other.descriptor.cid != package.descriptor.cid


def test_slot_without_subslot_defaults_to_slot() -> None:
    descriptor = normalize(dataclasses.replace(FACTS, slot="2")).descriptor
    assert (descriptor.slot, descriptor.subslot) == ("2", "2")


def _platform_dag(package: Package) -> dict[str, Any]:
    return package.platform.to_dag()


def _descriptor_dag(package: Package) -> dict[str, Any]:
    return package.descriptor.to_dag()


def test_from_dag_round_trip(package: Package) -> None:
    assert Platform.from_dag(_platform_dag(package)) == package.platform
    assert Descriptor.from_dag(_descriptor_dag(package)) == package.descriptor


@pytest.mark.parametrize("cls_name", ["platform", "descriptor"])
def test_unknown_field_is_rejected(package: Package, cls_name: str) -> None:
    value = _platform_dag(package) if cls_name == "platform" else _descriptor_dag(package)
    value["extra"] = "x"
    cls = Platform if cls_name == "platform" else Descriptor
    with pytest.raises(SchemaError, match="unknown field.*extra"):
        cls.from_dag(value)


@pytest.mark.parametrize(
    ("cls", "newer"),
    [(Platform, "ipfsbin/platform/3"), (Descriptor, "ipfsbin/descriptor/7")],
)
def test_newer_type_version_says_client_too_old(
    package: Package, cls: type[Platform] | type[Descriptor], newer: str
) -> None:
    value = _platform_dag(package) if cls is Platform else _descriptor_dag(package)
    value["type"] = newer
    with pytest.raises(SchemaError) as info:
        cls.from_dag(value)
    assert "not understood by this client" in info.value.message
    assert info.value.hint is not None and "upgrade" in info.value.hint


@pytest.mark.parametrize("cls", [Platform, Descriptor])
def test_older_type_version_is_refused(
    package: Package, cls: type[Platform] | type[Descriptor]
) -> None:
    value = _platform_dag(package) if cls is Platform else _descriptor_dag(package)
    value["type"] = str(value["type"]).replace("/2", "/1")
    with pytest.raises(SchemaError, match="from an older ipfsbin and no longer accepted") as info:
        cls.from_dag(value)
    assert info.value.hint is not None and "re-publishes" in info.value.hint


def test_other_type_is_rejected(package: Package) -> None:
    with pytest.raises(SchemaError, match="expected type ipfsbin/descriptor/2"):
        Descriptor.from_dag(_platform_dag(package))


BROKEN_PLATFORMS = [
    (lambda v: v.pop("ldflags"), "lacks field(s) ldflags"),
    (lambda v: v.update(ldflags=["-b", "-a"]), "sorted"),
    (lambda v: v.update(ldflags="-a"), "must be a list"),
    (lambda v: v.update(chost=7), "chost must be a string"),
    (lambda v: v["cflags"].update(opt="4"), "opt '4'"),
    (lambda v: v["cflags"].update(bogus=1), "unknown field(s) bogus"),
    (lambda v: v["libc"].update(version="two"), "not a version"),
    (lambda v: v["compiler"].update(family="msvc"), "compiler 'msvc'"),
    (lambda v: v.update(cxxflags=dict(v["cflags"])), "must be given as None"),
    (lambda v: v.pop("runtime"), "lacks field(s) runtime"),
    (lambda v: v["cflags"].update(features=["sse2", "avx"]), "sorted"),
    (lambda v: v["cflags"]["hardening"].pop("pie"), "hardening must have exactly the fields"),
    (lambda v: v["cflags"]["hardening"].update(fortify="2"), "fortify must be an int"),
    (lambda v: v["cflags"]["hardening"].update(fortify=True), "fortify must be an int"),
    (lambda v: v["cflags"]["hardening"].update(stack_clash=1), "stack_clash must be a bool"),
    (lambda v: v["cflags"]["hardening"].update(stack_protector="max"), "invalid hardening"),
]


@pytest.mark.parametrize(("breaker", "fragment"), BROKEN_PLATFORMS)
def test_broken_platform(package: Package, breaker: Any, fragment: str) -> None:
    value = _platform_dag(package)
    breaker(value)
    with pytest.raises(SchemaError) as info:
        Platform.from_dag(value)
    assert fragment in info.value.message


BROKEN_DESCRIPTORS = [
    (lambda v: v.update(platform="bafy"), "must be a link"),
    (lambda v: v.update(use=["ssl", "amd64"]), "sorted"),
    (lambda v: v.update(iuse=["a", "a"]), "duplicates"),
    (lambda v: v.update(cpv="libfoo"), "is not a CPV"),
    (lambda v: v["deps"][0].update(runtime="yes"), "must be a bool"),
    (lambda v: v["deps"].append(dict(v["deps"][0])), "unique"),
    (lambda v: v["requires"].update(x86_32=[]), "is empty"),
    (lambda v: v.update(requires=[]), "must be a map"),
]


@pytest.mark.parametrize(("breaker", "fragment"), BROKEN_DESCRIPTORS)
def test_broken_descriptor(package: Package, breaker: Any, fragment: str) -> None:
    value = _descriptor_dag(package)
    breaker(value)
    with pytest.raises(SchemaError) as info:
        Descriptor.from_dag(value)
    assert fragment in info.value.message


def test_from_block_checks_the_hash(package: Package) -> None:
    cid, data = package.descriptor.block
    other_cid, _ = package.platform.block
    with pytest.raises(BlockMismatchError):
        Descriptor.from_block(other_cid, data)
    assert Descriptor.from_block(cid, data).block == (cid, data)


def test_package_refuses_wrong_platform_link(package: Package) -> None:
    wrong = dataclasses.replace(package.descriptor, platform=CID(dagcbor.encode_block({})[0].bytes))
    with pytest.raises(ValueError, match="links platform"):
        Package(descriptor=wrong, platform=package.platform)


def test_constructor_refuses_unsorted_values() -> None:
    with pytest.raises(ValueError, match="sorted"):
        OptProfile(
            features=(), tune=None, opt="2", math=(), hardening=NO_HARDENING, flags=("-b", "-a")
        )
    with pytest.raises(ValueError, match="sorted"):
        OptProfile(
            features=("sse2", "avx"), tune=None, opt="2", math=(), hardening=NO_HARDENING, flags=()
        )
    with pytest.raises(ValueError, match="stack_protector"):
        dataclasses.replace(NO_HARDENING, stack_protector="extreme")
    with pytest.raises(ValueError, match="cf_protection"):
        dataclasses.replace(NO_HARDENING, cf_protection=("return", "branch"))
    with pytest.raises(ValueError, match="not category/package"):
        SlotDep(name="openssl", slot="0", subslot="3", runtime=True)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"libc_version": "latest"}, "not a version"),
        ({"compiler": "icc"}, "compiler 'icc'"),
        ({"cpv": "dev-libs/libfoo"}, "is not a CPV"),
        ({"slot": ""}, "slot is empty"),
        ({"cxxflags": "-march=pentium9"}, "CXXFLAGS: -march=pentium9 is refused"),
    ],
)
def test_bad_facts_are_descriptor_errors(change: dict[str, str], fragment: str) -> None:
    with pytest.raises(DescriptorError) as info:
        normalize(dataclasses.replace(FACTS, **change))
    assert fragment in info.value.message


def test_build_facts_take_strings_only() -> None:
    with pytest.raises(TypeError, match="BuildFacts.use must be a str"):
        dataclasses.replace(FACTS, use=["ssl"])  # type: ignore[arg-type]


def test_split_cpv() -> None:
    assert split_cpv("dev-libs/libfoo-1.2.3-r1") == ("dev-libs", "libfoo", "1.2.3-r1")
    assert split_cpv("x11-libs/gtk+-3.24.41") == ("x11-libs", "gtk+", "3.24.41")
    assert split_cpv("dev-lang/python-3.12.4_p2") == ("dev-lang", "python", "3.12.4_p2")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("12.2.0", "13.1", -1),
        ("13.1", "12.2.0", 1),
        ("13.2.1_p20230826", "13.2.1_p20240210", -1),
        ("13.2.1", "13.2.1_p20240210", -1),
        ("13.2.1_rc1", "13.2.1", -1),
        ("13.2.1_alpha", "13.2.1_beta", -1),
        ("2.39", "2.39_p1", -1),
        ("2.39-r6", "2.39-r10", 0),
        ("2.39", "2.39.0", -1),
        ("1.0a", "1.0", 1),
        ("1.01", "1.1", -1),
        ("18.1.8", "18.1.8", 0),
        ("9.5", "10.1", -1),
    ],
)
def test_compare_versions(a: str, b: str, expected: int) -> None:
    assert compare_versions(a, b) == expected
