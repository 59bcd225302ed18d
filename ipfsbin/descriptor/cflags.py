"""Compiler and linker flags to their normal form (schema/descriptor.md, section 3).

Flags are read left to right like the compiler does: flags that set the same
thing form a group in which the last one wins, then the survivors are sorted,
so that two spellings of one configuration give one profile.
"""

from __future__ import annotations

import re

from ipfsbin.descriptor._archspec_map import default_tune, family, is_known_target, lookup_march
from ipfsbin.descriptor.model import OPT_LEVELS, OptProfile
from ipfsbin.errors import DescriptorError

__all__ = [
    "baseline_target",
    "is_code_only",
    "normalize_cflags",
    "normalize_ldflags",
    "resolve_march",
]

# CHOST machine part -> archspec target when no -march is given.
_BASELINES: dict[str, str] = {
    "x86_64": "x86_64",
    "i686": "i686",
    "i386": "x86",
    "aarch64": "aarch64",
    "powerpc64le": "ppc64le",
    "powerpc64": "ppc64",
    "riscv64": "riscv64",
}

# CHOST machine part -> archspec families whose code it can run.
_FAMILIES: dict[str, frozenset[str]] = {
    "x86_64": frozenset({"x86_64"}),
    "aarch64": frozenset({"aarch64"}),
    "powerpc64le": frozenset({"ppc64le"}),
    "powerpc64": frozenset({"ppc64"}),
    "riscv64": frozenset({"riscv64"}),
}
_X86_32 = re.compile(r"^i[3-6]86$")

# Where -mcpu selects the ISA (elsewhere, on x86, it is an old spelling of -mtune).
_MCPU_IS_MARCH = frozenset({"aarch64", "ppc64", "ppc64le", "riscv64"})

_DROPPED_EXACT = frozenset(
    {
        "-pipe",
        "-w",
        "-v",
        "-Q",
        "-frecord-gcc-switches",
        "-fno-record-gcc-switches",
        "-fverbose-asm",
        "-ftime-report",
        "-fcolor-diagnostics",
        "-fno-color-diagnostics",
        "-fansi-escape-codes",
        "-feliminate-unused-debug-types",
        "-fno-eliminate-unused-debug-types",
    }
)
_DROPPED_PREFIXES = (
    "-fdiagnostics-",
    "-fno-diagnostics-",
    "-fmessage-length=",
    "-fmax-errors=",
    "-fvar-tracking",
    "-fno-var-tracking",
    "-fdebug-prefix-map=",
    "-save-temps",
)

_CODE_ONLY_EXACT = frozenset(
    {
        "-fomit-frame-pointer",
        "-fno-omit-frame-pointer",
        "-flto",
        "-fno-lto",
        "-ffat-lto-objects",
        "-fno-fat-lto-objects",
        "-fuse-linker-plugin",
        "-fplt",
        "-fno-plt",
        "-fstack-clash-protection",
        "-fno-stack-clash-protection",
        "-fcf-protection",
        "-U_FORTIFY_SOURCE",
        "-D_GLIBCXX_ASSERTIONS",
        "-fPIC",
        "-fpic",
        "-fPIE",
        "-fpie",
        "-fsemantic-interposition",
        "-fno-semantic-interposition",
        "-fpeel-loops",
        "-fprefetch-loop-arrays",
        "-fno-ident",
    }
)
_CODE_ONLY_PREFIXES = (
    "-flto-partition=",
    "-fstack-protector",
    "-fno-stack-protector",
    "-fcf-protection=",
    "-D_FORTIFY_SOURCE=",
    "-fgraphite",
    "-floop-",
    "-ftree-",
    "-fno-tree-",
    "-fipa-",
    "-fno-ipa-",
    "-funroll-",
    "-fno-unroll-",
    "-falign-",
    "-finline",
    "-fno-inline",
    "-fsched",
    "-fvect-cost-model=",
    "-ftrivial-auto-var-init=",
    "-fzero-call-used-regs=",
)
CODE_ONLY_FLAGS: tuple[str, ...] = tuple(sorted(_CODE_ONLY_EXACT)) + _CODE_ONLY_PREFIXES
"""Flags (exact, or prefixes ending in ``-``, ``=`` or a stem) the predicate ignores."""

_OPT_RE = re.compile(r"^-O(\d+|s|z|g|fast)?$")
_WORD_SIZE = frozenset({"-m16", "-m32", "-mx32", "-m64"})

# Options whose argument may be the next word. -D/-U/-I and --param are
# rewritten to their one-word form (same meaning to the compiler), the others
# are kept as "option argument": sorting the words apart would let
# "-D A -U B" and "-D B -U A" give one profile.
_ATTACHED_ARGUMENT = {"-D": "-D", "-U": "-U", "-I": "-I", "--param": "--param="}
_SEPARATE_ARGUMENT = frozenset(
    {
        "-include",
        "-imacros",
        "-isystem",
        "-idirafter",
        "-iquote",
        "-Xlinker",
        "-Xassembler",
        "-Xpreprocessor",
    }
)
# -fsanitize=a,b and friends add to (or take from) a set instead of replacing
# the previous value, so "last one wins" would lose sanitizers.
_SANITIZE_FAMILIES = ("sanitize", "sanitize-recover", "sanitize-trap")
# Options that may be given several times, each adding something: every one is kept.
_ACCUMULATING_PREFIXES = (
    "-fplugin=",
    "-fplugin-arg-",
    "-ffile-prefix-map=",
    "-fmacro-prefix-map=",
    "-fprofile-prefix-map=",
    "-finstrument-functions-exclude-",
)


def _machine(chost: str) -> str:
    return chost.split("-", 1)[0]


def baseline_target(chost: str) -> str:
    """The archspec target a compiler for ``chost`` uses when no -march is given."""
    machine = _machine(chost)
    if machine in _BASELINES:
        return _BASELINES[machine]
    if machine in ("i486", "i586"):
        return f"gcc:{machine}"
    raise DescriptorError(
        f"no baseline microarchitecture is known for CHOST {chost!r}",
        hint="set an explicit -march= in CFLAGS to share packages built for this CHOST",
    )


def _allowed_families(chost: str) -> frozenset[str]:
    machine = _machine(chost)
    if _X86_32.match(machine):
        # 32-bit code may be tuned for a 64-bit CPU (-march=haswell on i686).
        return frozenset({"x86", "x86_64"})
    return _FAMILIES.get(machine, frozenset())


def resolve_march(name: str, *, chost: str, host_target: str | None) -> str:
    """The target (archspec name or ``gcc:<name>``) that ``-march=name`` selects."""
    if name == "native":
        if host_target is None:
            raise DescriptorError(
                "CFLAGS use -march=native but no detected microarchitecture was given",
                hint="normalize on the builder itself, which passes archspec.cpu.host()",
            )
        if not is_known_target(host_target):
            raise DescriptorError(f"detected microarchitecture {host_target!r} is not known")
        target = host_target
    else:
        entry = lookup_march(name, _allowed_families(chost))
        if entry is None:
            raise DescriptorError(
                f"unknown -march={name}: neither archspec nor the list of compiler "
                "names ipfsbin knows has it",
                hint="packages built with it are not shared; a name archspec knows "
                "(x86-64-v3, haswell, znver3, ...) makes them shareable",
            )
        target = entry.target
    allowed = _allowed_families(chost)
    if allowed and family(target) not in allowed:
        raise DescriptorError(
            f"-march={name} selects {target} ({family(target)}), which CHOST {chost} cannot run",
        )
    return target


def _normalize_tune(name: str, chost: str, host_target: str | None) -> str:
    if name == "native":
        if host_target is None:
            raise DescriptorError(
                "CFLAGS use -mtune=native but no detected microarchitecture was given",
                hint="normalize on the builder itself, which passes archspec.cpu.host()",
            )
        return host_target
    entry = lookup_march(name, _allowed_families(chost))
    return entry.target if entry is not None else name


def _is_dropped(flag: str) -> bool:
    if flag in _DROPPED_EXACT or flag.startswith(_DROPPED_PREFIXES):
        return True
    if flag.startswith("-W") and not flag.startswith(("-Wl,", "-Wa,", "-Wp,")):
        return True
    return flag.startswith("-g")


def _words(text: str) -> list[str]:
    """The flags of ``text``, an option and its separate argument joined into one."""
    words = text.split()
    joined: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        has_argument = index + 1 < len(words)
        if word in _ATTACHED_ARGUMENT and has_argument:
            joined.append(_ATTACHED_ARGUMENT[word] + words[index + 1])
            index += 2
        elif word in _SEPARATE_ARGUMENT and has_argument:
            joined.append(f"{word} {words[index + 1]}")
            index += 2
        else:
            joined.append(word)
            index += 1
    return joined


def _sanitize_family(flag: str) -> tuple[str, bool, list[str]] | None:
    """(family, enables, values) for ``-f[no-]sanitize[-recover|-trap]=a,b``, else None."""
    if not flag.startswith("-f") or "=" not in flag:
        return None
    option, _, values = flag[2:].partition("=")
    enables = not option.startswith("no-")
    option = option.removeprefix("no-")
    if option not in _SANITIZE_FAMILIES:
        return None
    return option, enables, [v for v in values.split(",") if v]


def _sanitize_flags(states: dict[str, dict[str, bool]]) -> list[str]:
    """The kept ``-fsanitize…=VALUE`` flags, one per value still enabled."""
    kept: list[str] = []
    for option, values in states.items():
        enabled = sorted(v for v, on in values.items() if on)
        disabled = sorted(v for v, on in values.items() if not on)
        if enabled and disabled:
            # Sanitizer groups overlap (undefined holds alignment), so whether
            # -fno-sanitize=alignment wins depends on an order the profile drops.
            raise DescriptorError(
                f"the flags both enable ({','.join(enabled)}) and disable "
                f"({','.join(disabled)}) -f{option}= values; the result depends on their "
                "order, which is not recorded",
                hint=f"list only the -f{option}= values that stay enabled",
            )
        kept.extend(f"-f{option}={value}" for value in enabled)
    return kept


def _group(flag: str) -> tuple[str, str]:
    """(group key, flag as kept) for a flag outside the -O/-march/-mtune groups."""
    if flag.startswith(_ACCUMULATING_PREFIXES) or " " in flag:
        return "=" + flag, flag
    if flag.startswith("--param="):
        return "param:" + flag[len("--param=") :].split("=", 1)[0], flag
    if flag in ("-flto", "-fno-lto") or flag.startswith("-flto="):
        return "f:lto", "-fno-lto" if flag == "-fno-lto" else "-flto"
    if flag.startswith(("-fstack-protector", "-fno-stack-protector")):
        return "f:stack-protector", flag
    if flag in _WORD_SIZE:
        return "m:word-size", flag
    for prefix, kind in (("-f", "f"), ("-m", "m")):
        if flag.startswith(prefix) and len(flag) > 2:
            name = flag[2:].split("=", 1)[0]
            name = name.removeprefix("no-")
            return f"{kind}:{name}", flag
    if flag.startswith(("-D", "-U")) and len(flag) > 2:
        return "D:" + flag[2:].split("=", 1)[0], flag
    return "=" + flag, flag


def normalize_cflags(text: str, *, chost: str, host_target: str | None = None) -> OptProfile:
    """Normalize CFLAGS or CXXFLAGS for ``chost``.

    ``host_target`` is the builder's detected archspec microarchitecture; it is
    needed only when the flags say ``native``.
    """
    opt = "0"
    march: str | None = None
    tune: str | None = None
    groups: dict[str, str] = {}
    sanitize: dict[str, dict[str, bool]] = {}
    machine_families = _allowed_families(chost)
    mcpu_is_march = bool(machine_families & _MCPU_IS_MARCH)
    for flag in _words(text):
        match = _OPT_RE.match(flag)
        if match is not None:
            level = match.group(1) or "1"
            opt = str(min(int(level), 3)) if level.isdigit() else level
            continue
        if flag.startswith("-O"):
            raise DescriptorError(
                f"unknown optimization level {flag}",
                hint=f"use one of {', '.join('-O' + o for o in OPT_LEVELS)}",
            )
        if flag.startswith("-march="):
            march = flag[len("-march=") :]
        elif flag.startswith("-mcpu="):
            if mcpu_is_march:
                march = flag[len("-mcpu=") :]
            else:
                tune = flag[len("-mcpu=") :]
        elif flag.startswith("-mtune="):
            tune = flag[len("-mtune=") :]
        elif (found := _sanitize_family(flag)) is not None:
            family_name, enables, values = found
            states = sanitize.setdefault(family_name, {})
            for value in values:
                if value == "all" and not enables:
                    states.clear()  # off with nothing on is no flag at all
                else:
                    states[value] = enables
        elif not _is_dropped(flag):
            key, kept = _group(flag)
            groups[key] = kept
    kept_flags = set(groups.values()) | set(_sanitize_flags(sanitize))
    if march is None:
        target = baseline_target(chost)
    else:
        if not march:
            raise DescriptorError("empty -march= in CFLAGS", hint="give a -march name")
        target = resolve_march(march, chost=chost, host_target=host_target)
    tune_target: str | None = None
    if tune is not None:
        tune_target = _normalize_tune(tune, chost, host_target)
        # -march=native also tunes for the host; other names tune as archspec
        # says; without -march the compiler tunes for "generic".
        if march is None:
            default = "generic"
        elif march == "native":
            default = target
        else:
            default = default_tune(target)
        if tune_target == default:
            tune_target = None
    return OptProfile(
        target=target,
        tune=tune_target,
        opt=opt,
        flags=tuple(sorted(kept_flags)),
    )


def is_code_only(flag: str) -> bool:
    """True when ``flag`` changes code but neither the ABI nor what programs compute."""
    return flag in _CODE_ONLY_EXACT or flag.startswith(_CODE_ONLY_PREFIXES)


# Linker options that take their argument as the next comma-separated item.
_LD_WITH_ARGUMENT = frozenset({"-z", "-rpath", "-soname", "-rpath-link", "-m"})
_LD_DROPPED_PREFIXES = ("-O", "--hash-style=", "--build-id")


def _ld_group(option: tuple[str, ...]) -> str | None:
    """Group key of one linker option, or None to drop it."""
    head = option[0]
    if head.startswith(_LD_DROPPED_PREFIXES):
        return None
    if head == "-z" and len(option) == 2:
        value = option[1]
        if value in ("now", "lazy"):
            return "z:binding"
        return "z:" + value.removeprefix("no")
    if head.startswith("--"):
        name = head[2:].split("=", 1)[0]
        return "ld:" + name.removeprefix("no-")
    return "ld=" + ",".join(option)


def _linker_options(items: list[str]) -> list[tuple[str, ...]]:
    options: list[tuple[str, ...]] = []
    index = 0
    while index < len(items):
        item = items[index]
        if item in _LD_WITH_ARGUMENT and index + 1 < len(items):
            options.append((item, items[index + 1]))
            index += 2
            continue
        if item.startswith("-z") and len(item) > 2:
            options.append(("-z", item[2:]))
        elif item:
            options.append((item,))
        index += 1
    return options


def normalize_ldflags(text: str) -> tuple[str, ...]:
    """Normalize LDFLAGS: linker options one by one, the last of a group wins, sorted."""
    groups: dict[str, str] = {}
    for flag in text.split():
        if flag.startswith("-Wl,"):
            for option in _linker_options(flag[4:].split(",")):
                key = _ld_group(option)
                if key is not None:
                    groups[key] = "-Wl," + ",".join(option)
        elif _OPT_RE.match(flag):
            groups["O"] = flag
        elif not _is_dropped(flag):
            key, kept = _group(flag)
            groups[key] = kept
    return tuple(sorted(set(groups.values())))
