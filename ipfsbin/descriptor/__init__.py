"""Build descriptors: normalization of build facts and the compatibility predicate.

The format is specified in ``schema/descriptor.md``.
"""

from __future__ import annotations

from ipfsbin.descriptor.cflags import (
    CODE_ONLY_FLAGS,
    CONSERVATIVE_FLAGS,
    OPTIMIZATION_FLAGS,
    is_code_only,
    normalize_ldflags,
    runtime_needs,
)
from ipfsbin.descriptor.compat import (
    AXES,
    Compatibility,
    HostProfile,
    Mismatch,
    UseConfig,
    check_compatible,
    check_platform,
    lacking,
    verify_compatible,
)
from ipfsbin.descriptor.depstr import SlotAtom, merge_slot_deps, parse_requires, slot_atoms
from ipfsbin.descriptor.hardening import Hardening, Shortfall
from ipfsbin.descriptor.isa import host_cpu_features, isa_label, target_cpu_features
from ipfsbin.descriptor.model import (
    DESCRIPTOR_TYPE,
    OPT_LEVELS,
    PLATFORM_TYPE,
    Descriptor,
    OptProfile,
    Package,
    Platform,
    SlotDep,
    split_cpv,
)
from ipfsbin.descriptor.normalize import BuildFacts, normalize, normalize_platform
from ipfsbin.descriptor.profile import normalize_cflags
from ipfsbin.descriptor.toolchain import CompilerAnswer, CompilerProbe, Probe, chost_family
from ipfsbin.descriptor.verdict import EXACT, PREFERENCE_AXES, SAME_ISA, SharingPolicy

__all__ = [
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
    "CompilerProbe",
    "Hardening",
    "Descriptor",
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
