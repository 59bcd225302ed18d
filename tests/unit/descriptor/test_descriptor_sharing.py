"""Safety versus preference (schema/descriptor.md, section 5.1), with the real GCCs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.descriptor import (
    EXACT,
    PREFERENCE_AXES,
    SAME_ISA,
    Mismatch,
    SharingPolicy,
    check_compatible,
    normalize_cflags,
    verify_compatible,
)
from ipfsbin.descriptor.cflags import CONSERVATIVE_FLAGS, OPTIONAL_FLAGS
from ipfsbin.descriptor.isa import PRIVILEGED_ONLY, sysfs_features
from ipfsbin.descriptor.optcompare import DEFAULT_FLAGS, RELAXING_MATH
from ipfsbin.errors import DescriptorError
from tests.unit.descriptor.test_descriptor_compat import FACTS, _flags, _host, _package

PPC64 = "powerpc64-unknown-linux-gnu"
PPC64LE = "powerpc64le-unknown-linux-gnu"


def _kinds(package_flags: str, host_flags: str, **host: Any) -> list[tuple[str, str]]:
    package = _package(**_flags(package_flags))
    result = check_compatible(package, _host(cflags=host_flags, cxxflags=host_flags, **host))
    return sorted({(m.axis, m.kind) for m in result.mismatches})


# (id, build flags, host flags, expected {(axis, kind)})
CASES = [
    ("same", "-O2 -march=haswell", "-O2 -march=haswell", []),
    ("opt-level", "-O2 -march=haswell", "-O3 -march=haswell", [("opt", "preference")]),
    ("fast-math-build", "-O2 -march=haswell -ffast-math", "-O2", [("math", "safety")]),
    ("fast-math-host", "-O2 -march=haswell", "-O2 -ffast-math", [("math", "preference")]),
    ("no-errno-build", "-O2 -march=haswell -fno-math-errno", "-O2", [("math", "safety")]),
    ("rounding-host", "-O2 -march=haswell", "-O2 -frounding-math", [("math", "safety")]),
    ("rounding-build", "-O2 -march=haswell -frounding-math", "-O2", [("math", "preference")]),
    ("optimization-flag", "-O2 -march=haswell -fweb", "-O2", [("flags", "preference")]),
    ("host-optimization-flag", "-O2 -march=haswell", "-O2 -fweb", [("flags", "preference")]),
    ("conservative-build", "-O2 -march=haswell -fwrapv", "-O2", [("flags", "preference")]),
    ("conservative-host", "-O2 -march=haswell", "-O2 -fno-strict-aliasing", [("flags", "safety")]),
    ("openmp-host", "-O2 -march=haswell", "-O2 -fopenmp", [("flags", "preference")]),
    ("abi-flag", "-O2 -march=haswell -fshort-enums", "-O2", [("flags", "safety")]),
    ("unknown-flag", "-O2 -march=haswell -fno-common", "-O2", [("flags", "safety")]),
    ("restated-default", "-O2 -march=haswell -m64 -mfpmath=sse", "-O2", []),
    ("code-only", "-O2 -march=haswell -flto -fomit-frame-pointer", "-O2", []),
    ("tune", "-O2 -march=haswell -mtune=znver3", "-O2", []),
]


@pytest.mark.parametrize(
    ("build", "host", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_difference_is_safety_or_preference(
    build: str, host: str, expected: list[tuple[str, str]]
) -> None:
    assert _kinds(build, host) == expected


def test_an_isa_beyond_the_cpu_is_safety_whatever_the_flags() -> None:
    found = _kinds("-O3 -march=x86-64-v4", "-O3", cpu="-march=znver3")
    assert found == [("isa", "safety")]


def test_elfv2_is_ppc64les_default_but_another_abi_on_big_endian() -> None:
    def kinds(chost: str) -> list[tuple[str, str]]:
        package = _package(chost=chost, arch="ppc64", **_flags("-O2 -mcpu=power8 -mabi=elfv2"))
        host = _host(
            chost=chost,
            cpu="-mcpu=power8",
            cflags="-O2 -mcpu=power8",
        )
        return sorted({(m.axis, m.kind) for m in check_compatible(package, host).mismatches})

    assert kinds(PPC64LE) == []
    assert kinds(PPC64) == [("flags", "safety")]


def test_policy_accepts_only_its_preference_axes() -> None:
    package = _package(**_flags("-O2 -march=haswell -fweb"))
    result = check_compatible(package, _host(cflags="-O3 -march=haswell"))
    assert not result.ok and result.safe
    assert not result.accepted(EXACT)
    assert not result.accepted(SharingPolicy(may_differ=frozenset({"opt"})))
    assert result.accepted(SharingPolicy(may_differ=frozenset({"opt", "flags"})))
    assert result.accepted(SAME_ISA)
    assert {m.axis for m in result.accepted_differences(SAME_ISA)} == {"opt", "flags"}
    assert result.refusals(SAME_ISA) == ()


def test_verify_compatible_raises_for_what_the_policy_refuses() -> None:
    package = _package(**_flags("-O2 -march=haswell"))
    host = _host(cflags="-O3 -march=haswell", cxxflags="-O3 -march=haswell")
    verify_compatible(package, host, sharing=SAME_ISA)
    with pytest.raises(DescriptorError, match="CFLAGS -O2, this host uses -O3"):
        verify_compatible(package, host)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("exact", "exact"),
        ("same-isa", "same-isa"),
        (["flags", "opt"], ["opt", "flags"]),
        (list(PREFERENCE_AXES), "same-isa"),
        ([], "exact"),
    ],
)
def test_policy_names(value: Any, name: Any) -> None:
    assert SharingPolicy.parse(value).name == name


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("same-arch", "is not a sharing policy"), (["isa"], "isa cannot differ by policy")],
)
def test_bad_policies(value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        SharingPolicy.parse(value)


def test_a_safety_axis_cannot_carry_a_preference() -> None:
    with pytest.raises(ValueError, match="carries no preference"):
        Mismatch(axis="isa", reason="x", kind="preference")
    with pytest.raises(ValueError, match="kind"):
        Mismatch(axis="opt", reason="x", kind="maybe")  # type: ignore[arg-type]


def _without(cflags: str, *features: str) -> frozenset[str]:
    return frozenset(normalize_cflags(cflags, chost=FACTS.chost).features) - set(features)


def test_ring0_only_features_are_not_asked_of_the_cpu() -> None:
    """GCC 12 announces PCONFIG, WBNOINVD (and HRESET for alderlake); they fault in user space."""
    build = "-O2 -march=icelake-server"
    package = _package(**_flags(build))
    host = _host(cflags=build, cxxflags=build)
    host = dataclasses.replace(host, cpu_features=_without(build, *PRIVILEGED_ONLY))
    assert {"pconfig", "wbnoinvd"} <= set(package.platform.cflags.features)
    assert check_compatible(package, host).ok


@pytest.mark.parametrize(("march", "feature"), [("skylake", "sgx"), ("tigerlake", "keylocker")])
def test_sgx_and_key_locker_stay_required(march: str, feature: str) -> None:
    """User-mode ENCLU and the *KL instructions fault unless the OS enabled them, which
    the kernel's cpuinfo tells: a build announcing them is refused where they are off."""
    build = f"-O2 -march={march}"
    package = _package(**_flags(build))
    host = dataclasses.replace(
        _host(cflags=build, cxxflags=build), cpu_features=_without(build, feature)
    )
    result = check_compatible(package, host)
    assert feature in result.missing_features
    assert not result.accepted(SAME_ISA)


def test_ptwrite_is_read_from_the_intel_pt_driver(tmp_path: Path) -> None:
    assert sysfs_features(tmp_path) == frozenset()
    caps = tmp_path / "bus/event_source/devices/intel_pt/caps"
    caps.mkdir(parents=True)
    (caps / "ptwrite").write_text("0\n")
    assert sysfs_features(tmp_path) == frozenset()
    (caps / "ptwrite").write_text("1\n")
    assert sysfs_features(tmp_path) == frozenset({"ptwrite"})


def test_the_schema_names_every_classified_flag() -> None:
    """schema/descriptor.md 5.1 lists what the code classifies (the ``…`` lists excepted)."""
    prose = (Path(__file__).parents[3] / "schema" / "descriptor.md").read_text()
    named = (
        set(CONSERVATIVE_FLAGS)
        | set(OPTIONAL_FLAGS)
        | set(RELAXING_MATH)
        | {f for flags in DEFAULT_FLAGS.values() for f in flags}
        | {f.upper() for f in PRIVILEGED_ONLY}
    )
    assert [n for n in sorted(named) if f"`{n}`" not in prose and n not in prose] == []
