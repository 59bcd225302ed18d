"""Build descriptors: normalization of build facts and the compatibility predicate.

The format is specified in ``schema/descriptor.md``.
"""

from __future__ import annotations

from ipfsbin.descriptor.cflags import (
    CODE_ONLY_FLAGS,
    baseline_target,
    is_code_only,
    normalize_cflags,
    normalize_ldflags,
    resolve_march,
)
from ipfsbin.descriptor.compat import (
    AXES,
    Compatibility,
    HostProfile,
    Mismatch,
    UseConfig,
    check_compatible,
    target_runs_on,
    verify_compatible,
)
from ipfsbin.descriptor.depstr import SlotAtom, merge_slot_deps, parse_requires, slot_atoms
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

__all__ = [
    "AXES",
    "CODE_ONLY_FLAGS",
    "DESCRIPTOR_TYPE",
    "OPT_LEVELS",
    "PLATFORM_TYPE",
    "BuildFacts",
    "Compatibility",
    "Descriptor",
    "HostProfile",
    "Mismatch",
    "OptProfile",
    "Package",
    "Platform",
    "SlotAtom",
    "SlotDep",
    "UseConfig",
    "baseline_target",
    "check_compatible",
    "is_code_only",
    "merge_slot_deps",
    "normalize",
    "normalize_cflags",
    "normalize_ldflags",
    "normalize_platform",
    "parse_requires",
    "resolve_march",
    "slot_atoms",
    "split_cpv",
    "target_runs_on",
    "verify_compatible",
]
