"""The compiler that built a package, read from the ELF ``.comment`` sections.

Compilers leave their identity in ``.comment`` (``GCC: (Gentoo 13.2.1_p20240113
p12) 13.2.1``, ``clang version 17.0.6``); the linker merges the strings of all
linked objects. Portage's default stripping removes ``.comment``
(``-R .comment`` in estrip), so a stripped package has ELF files but no
compiler: that is family ``"unknown"``, never a guess. A package with no ELF
file at all is family ``"none"``.

The ELF reader is deliberately small: it reads the file header, the section
headers, the section-name table and ``.comment`` (each read bounded), never the
rest of the file, so memory stays flat whatever the size of the file; every
offset is bounds-checked, and anything malformed makes the file "not an ELF"
(skipped).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

__all__ = [
    "NO_COMMENT",
    "NO_ELF",
    "Compiler",
    "CompilerReport",
    "ar_members",
    "ar_ranges",
    "choose_compiler",
    "elf_comments",
    "parse_comment",
]

ELF_MAGIC = b"\x7fELF"
AR_MAGIC = b"!<arch>\n"

_FAMILY_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
_GCC_RE = re.compile(r"^GCC: \((?P<vendor>[^)]*)\) (?P<version>\d+(?:\.\d+)*)")
_CLANG_RE = re.compile(r"(?:^|\s)clang version (?P<version>\d+(?:\.\d+)*)")
_RUSTC_RE = re.compile(r"^rustc version (?P<version>\d+(?:\.\d+)*)")

# Families that say "no compiler could be read" rather than naming one.
_NO_COMPILER = frozenset({"none", "unknown"})
# When a package's files name several compilers, the package's own one wins
# over the toolchain that built the startup files (crt1.o, crtbegin.o) the
# linker adds to every executable: those come from gcc/glibc builds.
_FAMILY_RANK = {"rustc": 0, "clang": 1, "gcc": 2}


@dataclass(frozen=True, kw_only=True, order=True)
class Compiler:
    """A compiler family and its version (``Compiler(family="gcc", version="13.2.1")``).

    ``family`` is ``"none"`` when the package has no ELF file and
    ``"unknown"`` when its ELF files carry no compiler comment (stripped);
    both have an empty version.
    """

    family: str
    version: str

    def __post_init__(self) -> None:
        if not isinstance(self.family, str) or not _FAMILY_RE.match(self.family):
            raise ValueError(f"compiler family {self.family!r} is not a lowercase name")
        if not isinstance(self.version, str):
            raise TypeError(f"compiler version must be str, got {type(self.version).__name__}")
        if self.family in _NO_COMPILER and self.version:
            raise ValueError(f"compiler family {self.family!r} takes no version")
        if self.family not in _NO_COMPILER and not self.version:
            raise ValueError(f"compiler family {self.family!r} needs a version")

    @property
    def known(self) -> bool:
        """True when a real compiler was identified."""
        return self.family not in _NO_COMPILER

    def to_dag(self) -> dict[str, Any]:
        return {"family": self.family, "version": self.version}

    @classmethod
    def from_dag(cls, value: Any) -> Compiler:
        if not isinstance(value, dict) or set(value) != {"family", "version"}:
            raise ValueError(f"a compiler is a map of family and version, got {value!r}")
        return cls(family=value["family"], version=value["version"])


NO_ELF = Compiler(family="none", version="")
NO_COMMENT = Compiler(family="unknown", version="")


@dataclass(frozen=True, kw_only=True)
class CompilerReport:
    """What a package's files said: the chosen compiler and everything seen.

    ``seen`` lists each compiler named with the number of ELF files naming it;
    ``comments`` holds every distinct ``.comment`` string, sorted.
    """

    compiler: Compiler
    seen: tuple[tuple[Compiler, int], ...]
    comments: tuple[str, ...]
    elf_files: int


def parse_comment(text: str) -> Compiler | None:
    """The compiler one ``.comment`` string names, or None (linker notes, other tools)."""
    text = text.strip()
    match = _GCC_RE.match(text)
    if match:
        return Compiler(family="gcc", version=match["version"])
    match = _CLANG_RE.search(text)
    if match:
        return Compiler(family="clang", version=match["version"])
    match = _RUSTC_RE.match(text)
    if match:
        return Compiler(family="rustc", version=match["version"])
    return None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def choose_compiler(
    per_file_comments: Iterable[Iterable[str]],
) -> CompilerReport:
    """Pick the package's compiler from the comments of each of its ELF files.

    Rule, deterministic: a non-gcc compiler (clang, rustc) beats gcc, since
    gcc's own startup files are linked into clang- and rustc-built programs
    too; within a family, the compiler named by the most files wins, then the
    highest version (the libc's startup files are usually older than the
    compiler that builds new packages).
    """
    counts: dict[Compiler, int] = {}
    comments: set[str] = set()
    files = 0
    for file_comments in per_file_comments:
        files += 1
        named: set[Compiler] = set()
        for text in file_comments:
            comments.add(text)
            compiler = parse_comment(text)
            if compiler is not None:
                named.add(compiler)
        for compiler in named:
            counts[compiler] = counts.get(compiler, 0) + 1
    if files == 0:
        chosen = NO_ELF
    elif not counts:
        chosen = NO_COMMENT
    else:
        chosen = min(
            counts,
            key=lambda c: (
                _FAMILY_RANK.get(c.family, 0),
                -counts[c],
                tuple(-n for n in _version_key(c.version)),
            ),
        )
    seen = tuple(sorted(counts.items()))
    return CompilerReport(
        compiler=chosen, seen=seen, comments=tuple(sorted(comments)), elf_files=files
    )


# Bounds on what one ELF file may make the reader hold: a section-name table
# or a .comment bigger than these is not what a compiler writes.
_NAMES_IN_MEMORY = 1024 * 1024
_MAX_COMMENT = 1024 * 1024
_HEADERS_PER_READ = 1024


class _Window:
    """``size`` bytes of a seekable file from ``start``; reads past the end raise."""

    def __init__(self, file: BinaryIO, start: int, size: int) -> None:
        self.file, self.start, self.size = file, start, size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError("read past the end of the file")
        self.file.seek(self.start + offset)
        data = self.file.read(length)
        if len(data) != length:
            raise ValueError("the file is shorter than it says")
        return data


def elf_comments(
    data: bytes | BinaryIO, *, start: int = 0, size: int | None = None
) -> tuple[str, ...] | None:
    """The strings of the ``.comment`` section of one ELF file.

    ``data`` is the file's bytes or a seekable binary file (then ``start``
    and ``size`` pick an ELF object inside it, such as an ``ar`` member).
    Returns an empty tuple for an ELF without ``.comment`` and None when the
    bytes are not a well-formed ELF (a bad file is skipped, never fatal).
    """
    file: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
    if size is None:
        size = file.seek(0, io.SEEK_END) - start
    try:
        return _elf_comments(_Window(file, start, size))
    except (struct.error, ValueError, IndexError):
        return None


def _elf_comments(view: _Window) -> tuple[str, ...] | None:
    if view.size < 16:
        return None
    ident = view.read(0, 16)
    if ident[:4] != ELF_MAGIC:
        return None
    elf_class, elf_data = ident[4], ident[5]
    if elf_class not in (1, 2) or elf_data not in (1, 2):
        return None
    endian = "<" if elf_data == 1 else ">"
    if elf_class == 2:
        header = struct.Struct(endian + "16xHHIQQQIHHHHHH")
        section = struct.Struct(endian + "IIQQQQIIQQ")
    else:
        header = struct.Struct(endian + "16xHHIIIIIHHHHHH")
        section = struct.Struct(endian + "IIIIIIIIII")
    fields = header.unpack(view.read(0, header.size))
    shoff, shentsize, shnum, shstrndx = fields[5], fields[10], fields[11], fields[12]
    if shoff == 0:
        return ()
    if shentsize < section.size or shoff >= view.size:
        return None

    def section_header(index: int) -> tuple[int, ...]:
        return section.unpack(view.read(shoff + index * shentsize, section.size))

    first = section_header(0)
    # Extended numbering: counts that do not fit live in section 0.
    if shnum == 0:
        shnum = first[5]
    if shstrndx == 0xFFFF:
        shstrndx = first[6]
    if shnum == 0 or shnum > (view.size - shoff) // shentsize or shstrndx >= shnum:
        return None

    def section_bytes(hdr: tuple[int, ...], limit: int) -> bytes:
        sh_type, offset, length = hdr[1], hdr[4], hdr[5]
        if sh_type == 8:  # SHT_NOBITS occupies no file space
            return b""
        if length > limit:
            raise ValueError("section too big")
        return view.read(offset, length)

    names_hdr = section_header(shstrndx)
    names_offset, names_size = names_hdr[4], 0 if names_hdr[1] == 8 else names_hdr[5]
    # The section-name table is small in real files; a bigger one is read name by name.
    names = view.read(names_offset, names_size) if names_size <= _NAMES_IN_MEMORY else None

    def is_comment(name_offset: int) -> bool:
        if name_offset >= names_size:
            return False
        if names is not None:
            return names[name_offset : name_offset + 9] == b".comment\0"
        length = min(9, names_size - name_offset)
        return view.read(names_offset + name_offset, length) == b".comment\0"

    strings: list[str] = []
    for index, hdr in _section_headers(view, section, shoff, shentsize, shnum):
        if index == 0 or not is_comment(hdr[0]):
            continue
        for raw in section_bytes(hdr, _MAX_COMMENT).split(b"\0"):
            text = raw.decode("utf-8", "replace").strip()
            if text and text not in strings:
                strings.append(text)
    return tuple(strings)


def _section_headers(
    view: _Window, section: struct.Struct, shoff: int, shentsize: int, shnum: int
) -> Iterator[tuple[int, tuple[int, ...]]]:
    """Every section header, read a bounded batch at a time."""
    for first in range(0, shnum, _HEADERS_PER_READ):
        count = min(_HEADERS_PER_READ, shnum - first)
        block = view.read(shoff + first * shentsize, count * shentsize)
        for i in range(count):
            yield first + i, section.unpack_from(block, i * shentsize)


def ar_ranges(file: BinaryIO) -> Iterator[tuple[int, int]]:
    """(offset, size) of each member of a Unix ``ar`` archive, skipping index tables."""
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    if file.read(len(AR_MAGIC)) != AR_MAGIC:
        return
    pos = len(AR_MAGIC)
    while pos + 60 <= size:
        file.seek(pos)
        header = file.read(60)
        if len(header) != 60 or header[58:60] != b"`\n":
            break
        name = header[:16].rstrip()
        try:
            length = int(header[48:58].decode("ascii").strip())
        except ValueError:
            break
        body_start = pos + 60
        if length < 0 or body_start + length > size:
            break
        # "/" and "//" are the symbol index and the long-name table.
        if name not in (b"/", b"//", b"/SYM64/", b"__.SYMDEF"):
            yield body_start, length
        pos = body_start + length + (length & 1)


def ar_members(data: bytes) -> list[bytes]:
    """The member files of a Unix ``ar`` archive (static library), skipping index tables."""
    return [data[start : start + length] for start, length in ar_ranges(io.BytesIO(data))]
