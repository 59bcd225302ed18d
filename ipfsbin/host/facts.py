"""The builder host's facts that a binpkg does not record: profile, libc, compiler, CPU.

:func:`detect_host_facts` reads them from the running system (each may be
given instead); they complete a binpkg's own facts when its descriptor is
normalized (:mod:`ipfsbin.builder.publish`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ipfsbin.errors import DescriptorError

__all__ = ["HostFacts", "detect_host_facts", "host_target"]

_VERSION_RE = re.compile(r"^\d+(\.\d+)*")


@dataclass(frozen=True, kw_only=True, slots=True)
class HostFacts:
    """What the builder host adds to a binpkg's own facts to describe its platform.

    ``compiler``/``compiler_version`` stand in only for packages whose files
    name no compiler (no ELF, or stripped); ``target`` is the host's archspec
    microarchitecture, used to resolve ``-march=native``.
    """

    profile: str
    libc: str
    libc_version: str
    compiler: str
    compiler_version: str
    target: str | None = None

    def __post_init__(self) -> None:
        for name in ("profile", "libc", "libc_version", "compiler", "compiler_version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"HostFacts.{name} must be a non-empty string, got {value!r}")


def _detect_profile(config_root: Path) -> str:
    link = config_root / "etc" / "portage" / "make.profile"
    try:
        target = os.path.realpath(link, strict=True)
    except OSError:
        raise DescriptorError(
            f"cannot tell the Portage profile: {link} does not exist",
            hint="pass --profile (e.g. default/linux/amd64/23.0) or set PORTAGE_CONFIGROOT",
        ) from None
    marker = "/profiles/"
    if marker not in target:
        raise DescriptorError(
            f"cannot tell the Portage profile: {link} points to {target}, "
            "not into a repository's profiles/ directory",
            hint="pass --profile (e.g. default/linux/amd64/23.0)",
        )
    return target.rpartition(marker)[2].strip("/")


def _detect_libc() -> tuple[str, str]:
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        text = ""
    name, _, version = text.partition(" ")
    if name == "glibc" and _VERSION_RE.match(version):
        return "glibc", version
    raise DescriptorError(
        "cannot tell the C library of this host (only glibc is detected)",
        hint="pass --libc NAME-VERSION, e.g. --libc musl-1.2.5",
    )


def _compiler_version(program: str) -> tuple[str, str] | None:
    path = shutil.which(program)
    if path is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 - a compiler found on PATH, fixed arguments
            [path, "-dumpfullversion", "-dumpversion"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    family = "clang" if "clang" in Path(program).name else "gcc"
    return (family, out) if _VERSION_RE.match(out) else None


def detect_host_facts(
    *,
    config_root: Path | None = None,
    profile: str | None = None,
    libc: tuple[str, str] | None = None,
    compiler: tuple[str, str] | None = None,
) -> HostFacts:
    """This host's facts; each argument given overrides its detection.

    The profile is read from ``<config_root>/etc/portage/make.profile``
    (``config_root`` defaults to ``$PORTAGE_CONFIGROOT`` or ``/``); libc from
    the C library the process runs on; the fallback compiler is ``gcc`` on
    PATH. ``DescriptorError`` (with a hint) when something cannot be told.
    """
    if profile is None:
        root = config_root or Path(os.environ.get("PORTAGE_CONFIGROOT") or "/")
        profile = _detect_profile(root)
    libc_name, libc_version = libc if libc is not None else _detect_libc()
    if compiler is None:
        compiler = _compiler_version("gcc")
        if compiler is None:
            raise DescriptorError(
                "cannot tell this host's compiler: no gcc on PATH",
                hint="pass --compiler FAMILY-VERSION, e.g. --compiler gcc-14.2.1",
            )
    return HostFacts(
        profile=profile,
        libc=libc_name,
        libc_version=libc_version,
        compiler=compiler[0],
        compiler_version=compiler[1],
        target=None,
    )


def host_target() -> str:
    """This CPU's archspec microarchitecture (what ``-march=native`` selects here)."""
    import archspec.cpu

    name: str = archspec.cpu.host().name
    return name
