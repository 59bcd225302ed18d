"""Ask the builder's own compiler what a set of flags means (schema/descriptor.md, 3.2).

The compiler for a CHOST applies its flags left to right; its predefined
macros (``-dM -E``) and, for GCC, its option states (``-Q --help=common``)
tell which instruction-set extensions, floating-point semantics and
hardening the code may use. Each distinct (compiler, flags) pair is asked
once per process.
"""

from __future__ import annotations

import functools
import os
import platform as _platform
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ipfsbin.errors import DescriptorError

__all__ = [
    "CompilerAnswer",
    "CompilerProbe",
    "CompilerRefused",
    "Probe",
    "chost_family",
    "default_probe",
]

# CHOST machine part -> family (archspec's names) of the code it runs.
_MACHINE_FAMILY: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^x86_64$"), "x86_64"),
    (re.compile(r"^i[3-6]86$"), "x86"),
    (re.compile(r"^aarch64$"), "aarch64"),
    (re.compile(r"^powerpc64le$"), "ppc64le"),
    (re.compile(r"^powerpc64$"), "ppc64"),
    (re.compile(r"^powerpc$"), "ppc"),
)

# Family -> (Debian-style triplet prefixes of compilers able to probe it, mode flags).
# A compiler of a sibling family probes another with mode flags that come
# before the user's (so a user's -mcpu still wins): the x86-64 GCC probes
# i686 code with -m32, the ppc64le GCC big-endian and 32-bit PowerPC with the
# generic CPU those CHOSTs' own compilers default to.
_COMPILERS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "x86_64": (("x86_64", ()),),
    "x86": (("i686", ()), ("x86_64", ("-m32",))),
    "aarch64": (("aarch64", ()),),
    "ppc64le": (("powerpc64le", ()),),
    "ppc64": (("powerpc64", ()), ("powerpc64le", ("-mbig-endian", "-mcpu=powerpc64"))),
    "ppc": (("powerpc", ()), ("powerpc64le", ("-m32", "-mbig-endian", "-mcpu=powerpc"))),
}


def chost_family(chost: str) -> str:
    """The archspec family of the code a CHOST runs (``x86_64``, ``aarch64``, ...)."""
    machine = chost.split("-", 1)[0]
    for pattern, name in _MACHINE_FAMILY:
        if pattern.match(machine):
            return name
    raise DescriptorError(
        f"CHOST {chost} is not one ipfsbin describes (x86, x86-64, AArch64, PowerPC)",
        hint="packages for this CHOST are not shared",
    )


class CompilerRefused(DescriptorError):
    """The compiler rejected the flags; ``message`` is its own error, the caller rewords it."""


@dataclass(frozen=True, kw_only=True)
class CompilerAnswer:
    """What the compiler said about one set of flags."""

    compiler: str
    """The program asked (for messages)."""
    macros: Mapping[str, str]
    """Predefined macros: name -> value."""
    options: Mapping[str, str]
    """``-Q --help=common`` and ``--help=target``: option -> state (``[enabled]``, a value).

    Clang has no ``-Q``: its answer holds the states read from the flags
    themselves, the weakest where the flags do not say (section 3.2)."""


class Probe(Protocol):
    """What the normalizer needs from a compiler; tests may pass a recording one."""

    def ask(self, chost: str, flags: tuple[str, ...], *, family: str = "gcc") -> CompilerAnswer:
        """What the ``family`` compiler for ``chost`` makes of ``flags``."""
        ...

    def is_native(self, chost: str, *, family: str = "gcc") -> bool:
        """Whether this machine's own CPU is what ``-march=native`` means for ``chost``."""
        ...


def _machine_family() -> str | None:
    try:
        return chost_family(_platform.machine() + "-linux")
    except DescriptorError:
        return None


def _first_error(stderr: str) -> str:
    for line in stderr.splitlines():
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return stderr.strip().splitlines()[-1] if stderr.strip() else "it failed"


def _parse_options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("  -"):
            continue
        name, _, state = line.strip().partition(" ")
        name = name.split("=[", 1)[0].split("=<", 1)[0]
        options.setdefault(name, state.strip())
    return options


class CompilerProbe:
    """Runs the compiler for the CHOST: GCC as ``CHOST-gcc``, a Debian cross ``gcc`` or
    this machine's ``gcc``; Clang as ``CHOST-clang`` or ``clang --target=CHOST``."""

    def __init__(self, search_path: str | None = None) -> None:
        self._path = search_path if search_path is not None else os.environ.get("PATH", "")

    @functools.cache  # noqa: B019 - one probe object lives for the whole process
    def _compiler(self, chost: str, family: str) -> tuple[str, tuple[str, ...]] | None:
        machine_family = chost_family(chost)
        candidates: list[tuple[str, tuple[str, ...]]]
        if family == "clang":
            candidates = [(f"{chost}-clang", ()), ("clang", (f"--target={chost}",))]
        else:
            own = _machine_family()
            candidates = [(f"{chost}-gcc", ())]
            for prefix, mode in _COMPILERS.get(machine_family, ()):
                candidates.append((f"{prefix}-linux-gnu-gcc", mode))
                if own is not None and _COMPILERS[own][0][0] == prefix:
                    candidates.append(("gcc", mode))
        for program, mode in candidates:
            found = shutil.which(program, path=self._path)
            if found is not None:
                return found, mode
        return None

    def command(self, chost: str, *, family: str = "gcc") -> tuple[str, ...] | None:
        """The compiler and mode flags :meth:`ask` runs for ``chost``; None when none is found."""
        found = self._compiler(chost, family)
        return None if found is None else (found[0], *found[1])

    def is_native(self, chost: str, *, family: str = "gcc") -> bool:
        found = self._compiler(chost, family)
        same_machine = chost_family(chost) == _machine_family()
        if family == "clang":
            return found is not None and same_machine
        return found is not None and not found[1] and same_machine

    def ask(self, chost: str, flags: tuple[str, ...], *, family: str = "gcc") -> CompilerAnswer:
        if family not in ("gcc", "clang"):
            raise ValueError(f"compiler family {family!r} is not gcc or clang")
        found = self._compiler(chost, family)
        if found is None:
            name = "Clang" if family == "clang" else "GCC"
            debian = "clang" if family == "clang" else f"{chost.split('-', 1)[0]}-linux-gnu-gcc"
            raise DescriptorError(
                f"no {name} for CHOST {chost} on this builder to tell which instructions "
                "its CFLAGS allow",
                hint=f"install {chost}-{family} (crossdev) or Debian's {debian}; without "
                f"it packages built with {family} for {chost} are not shared",
            )
        return _ask(found[0], found[1], flags, family == "clang")


def _clang_options(flags: tuple[str, ...]) -> dict[str, str]:
    """The option states the flags set, weakest where they say nothing.

    Clang cannot print its option states; its defaults (a distribution may
    turn stack-clash protection on) are taken as off, so a build never
    claims hardening it may lack.
    """
    options = {"-fstack-clash-protection": "[disabled]", "-ftrivial-auto-var-init": ""}
    tune = ""
    for flag in flags:
        if flag in ("-fstack-clash-protection", "-fno-stack-clash-protection"):
            on = not flag.startswith("-fno-")
            options["-fstack-clash-protection"] = "[enabled]" if on else "[disabled]"
        elif flag.startswith("-ftrivial-auto-var-init="):
            options["-ftrivial-auto-var-init"] = flag.split("=", 1)[1]
        elif flag.startswith("-mtune="):
            tune = flag.split("=", 1)[1]
        elif flag.startswith("-mcpu=") and not tune:
            tune = flag.split("=", 1)[1].split("+", 1)[0]
    options["-mtune="] = tune
    return options


@functools.cache
def _ask(
    program: str, mode: tuple[str, ...], flags: tuple[str, ...], clang: bool
) -> CompilerAnswer:
    # "-mllvm -polly" is one flag to ipfsbin and two arguments to the compiler.
    argv = [program, *mode, *(arg for flag in flags for arg in flag.split(" ", 1))]
    macros_run = _run([*argv, "-dM", "-E", "-x", "c", os.devnull])
    if clang:
        options = _clang_options(flags)
    else:
        options = _parse_options(_run([*argv, "-Q", "--help=common", "--help=target"]))
    macros: dict[str, str] = {}
    for line in macros_run.splitlines():
        parts = line.split(" ", 2)
        if len(parts) >= 2 and parts[0] == "#define":
            macros[parts[1]] = parts[2] if len(parts) == 3 else ""
    return CompilerAnswer(compiler=os.path.basename(program), macros=macros, options=options)


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - a compiler found on PATH, flags as arguments
            argv, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DescriptorError(f"cannot run {argv[0]}: {exc}") from exc
    if done.returncode != 0:
        raise CompilerRefused(_first_error(done.stderr))
    return done.stdout


@functools.cache
def default_probe() -> CompilerProbe:
    """The probe over this process's PATH."""
    return CompilerProbe()
