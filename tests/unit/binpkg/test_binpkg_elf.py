"""Compiler detection from ELF .comment sections, on objects compiled here and on bad bytes."""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from ipfsbin.binpkg import NO_COMMENT, NO_ELF, Compiler
from ipfsbin.binpkg.elf import ar_members, ar_ranges, choose_compiler, elf_comments, parse_comment

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")


def _compile(
    tmp_path: Path, *flags: str, source: str = "int answer(void) { return 42; }\n"
) -> bytes:
    src = tmp_path / "x.c"
    src.write_text(source)
    out = tmp_path / "x.o"
    subprocess.run([GCC or "gcc", "-c", *flags, "-o", str(out), str(src)], check=True)
    return out.read_bytes()


def _gcc_version() -> str:
    return subprocess.run(
        [GCC or "gcc", "-dumpfullversion"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("GCC: (Debian 12.2.0-14+deb12u1) 12.2.0", Compiler(family="gcc", version="12.2.0")),
        (
            "GCC: (Gentoo 13.2.1_p20240113-r1 p12) 13.2.1",
            Compiler(family="gcc", version="13.2.1"),
        ),
        (
            "GCC: (GNU) 4.8.5 20150623 (Red Hat 4.8.5-44)",
            Compiler(family="gcc", version="4.8.5"),
        ),
        ("clang version 17.0.6", Compiler(family="clang", version="17.0.6")),
        ("Debian clang version 14.0.6", Compiler(family="clang", version="14.0.6")),
        (
            "Ubuntu clang version 18.1.3 (1ubuntu1)",
            Compiler(family="clang", version="18.1.3"),
        ),
        (
            "rustc version 1.75.0 (82e1608df 2023-12-21)",
            Compiler(family="rustc", version="1.75.0"),
        ),
        ("Linker: LLD 17.0.6", None),
        ("", None),
    ],
)
def test_parse_comment(comment: str, expected: Compiler | None) -> None:
    assert parse_comment(comment) == expected


def test_choose_prefers_clang_over_startup_file_gcc() -> None:
    gcc = "GCC: (Gentoo 13.2.1 p12) 13.2.1"
    clang = "clang version 17.0.6"
    report = choose_compiler([[gcc, clang], [gcc, clang], [gcc]])
    assert report.compiler == Compiler(family="clang", version="17.0.6")
    assert dict(report.seen) == {
        Compiler(family="gcc", version="13.2.1"): 3,
        Compiler(family="clang", version="17.0.6"): 2,
    }
    assert report.comments == tuple(sorted((gcc, clang)))
    assert report.elf_files == 3


def test_choose_most_files_then_highest_version() -> None:
    old, new = "GCC: (Gentoo 12.3.1) 12.3.1", "GCC: (Gentoo 13.2.1) 13.2.1"
    assert choose_compiler([[old, new], [new]]).compiler.version == "13.2.1"
    assert choose_compiler([[old], [old], [new]]).compiler.version == "12.3.1"
    # A tie is broken by the higher version, whatever the order.
    assert choose_compiler([[new], [old]]).compiler.version == "13.2.1"
    assert choose_compiler([[old], [new]]).compiler.version == "13.2.1"


def test_choose_without_elf_or_without_comment() -> None:
    assert choose_compiler([]).compiler == NO_ELF
    assert choose_compiler([[], ["Linker: LLD 17.0.6"]]).compiler == NO_COMMENT


def test_compiler_validates_and_round_trips() -> None:
    gcc = Compiler(family="gcc", version="12.2.0")
    assert Compiler.from_dag(gcc.to_dag()) == gcc
    assert gcc.known and not NO_ELF.known and not NO_COMMENT.known
    with pytest.raises(ValueError, match="takes no version"):
        Compiler(family="none", version="1")
    with pytest.raises(ValueError, match="needs a version"):
        Compiler(family="gcc", version="")
    with pytest.raises(ValueError, match="lowercase"):
        Compiler(family="GCC", version="1")
    with pytest.raises(ValueError, match="family and version"):
        Compiler.from_dag({"family": "gcc"})


@needs_gcc
def test_comment_of_object_compiled_here(tmp_path: Path) -> None:
    comments = elf_comments(_compile(tmp_path, "-O2"))
    assert comments is not None
    report = choose_compiler([comments])
    assert report.compiler == Compiler(family="gcc", version=_gcc_version())


@needs_gcc
def test_object_without_comment(tmp_path: Path) -> None:
    assert elf_comments(_compile(tmp_path, "-fno-ident")) == ()


@needs_gcc
def test_32_bit_object(tmp_path: Path) -> None:
    try:
        data = _compile(tmp_path, "-m32")
    except subprocess.CalledProcessError:
        pytest.skip("gcc cannot build 32-bit objects here")
    assert data[4] == 1  # ELFCLASS32
    comments = elf_comments(data)
    assert comments is not None and parse_comment(comments[0]) is not None


@needs_gcc
def test_static_library_members(tmp_path: Path) -> None:
    if shutil.which("ar") is None:
        pytest.skip("ar is not installed")
    obj = tmp_path / "x.o"
    obj.write_bytes(_compile(tmp_path))
    lib = tmp_path / "libx.a"
    subprocess.run(["ar", "rcs", str(lib), str(obj)], check=True)
    members = ar_members(lib.read_bytes())
    assert len(members) == 1
    assert elf_comments(members[0]) == elf_comments(obj.read_bytes())
    # The same member read in place from the file, as the image scan does.
    with open(lib, "rb") as f:
        [(start, size)] = list(ar_ranges(f))
        assert elf_comments(f, start=start, size=size) == elf_comments(obj.read_bytes())
    assert ar_members(b"not an archive") == []
    # A truncated archive yields the members that are whole, and no error.
    assert ar_members(lib.read_bytes()[:80]) == []


def _minimal_elf64(shoff: int, shnum: int, shstrndx: int, shentsize: int = 64) -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    return ident + struct.pack(
        "<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, shentsize, shnum, shstrndx
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x7fEL",
        b"\x7fELF",
        b"\x7fELF" + bytes([3, 1]) + bytes(58),  # bad class
        _minimal_elf64(shoff=1 << 40, shnum=3, shstrndx=1),  # headers past the end
        _minimal_elf64(shoff=64, shnum=1000, shstrndx=1),  # more headers than bytes
        _minimal_elf64(shoff=64, shnum=1, shstrndx=5),  # string table index out of range
        _minimal_elf64(shoff=64, shnum=1, shstrndx=0, shentsize=8),  # entry too small
    ],
)
def test_malformed_elf_is_skipped(data: bytes) -> None:
    assert elf_comments(data) is None


def test_elf_without_section_headers_has_no_comment() -> None:
    assert elf_comments(_minimal_elf64(shoff=0, shnum=0, shstrndx=0)) == ()


@needs_gcc
def test_mutated_and_truncated_objects_never_raise(tmp_path: Path) -> None:
    data = _compile(tmp_path)
    rng = random.Random(7)
    for cut in range(0, len(data), 53):
        result = elf_comments(data[:cut])
        assert result is None or isinstance(result, tuple)
    for _ in range(500):
        mutated = bytearray(data)
        for _ in range(4):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        result = elf_comments(bytes(mutated))
        assert result is None or all(isinstance(s, str) for s in result)


class _CountingFile(io.FileIO):
    """A file that counts the bytes read from it."""

    read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data


@needs_gcc
def test_large_elf_is_read_at_its_headers_and_comment_only(tmp_path: Path) -> None:
    # A linked program with 64 MiB of data in it: the ELF reader must not read that.
    src = tmp_path / "big.c"
    src.write_text(
        "static const char blob[64 << 20] = {1};\nint main(void) { return blob[12345]; }\n"
    )
    out = tmp_path / "big"
    subprocess.run(["gcc", "-O0", "-o", str(out), str(src)], check=True)
    assert out.stat().st_size > 64 << 20
    with _CountingFile(out, "rb") as f:
        comments = elf_comments(f)
        assert f.read_bytes < 64 * 1024
    assert comments is not None
    assert choose_compiler([comments]).compiler == Compiler(family="gcc", version=_gcc_version())


def _elf64_with_names(names: bytes, comment_name_at: int, comment: bytes) -> bytes:
    """An ELF64 with a null section, a section-name table and a .comment section."""
    names_at = 64
    comment_at = names_at + len(names)
    shoff = comment_at + len(comment)
    header = _minimal_elf64(shoff=shoff, shnum=3, shstrndx=1)
    sections = struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    sections += struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, names_at, len(names), 0, 0, 1, 0)
    sections += struct.pack(
        "<IIQQQQIIQQ", comment_name_at, 1, 0, 0, comment_at, len(comment), 0, 0, 1, 1
    )
    return header + names + comment + sections


def test_a_large_section_name_table_is_read_name_by_name(tmp_path: Path) -> None:
    names = bytearray(3 << 20)
    at = 2 << 20
    names[at : at + 9] = b".comment\0"
    path = tmp_path / "names.elf"
    path.write_bytes(_elf64_with_names(bytes(names), at, b"GCC: (Gentoo 14.2.1) 14.2.1\0"))
    with _CountingFile(path, "rb") as f:
        assert elf_comments(f) == ("GCC: (Gentoo 14.2.1) 14.2.1",)
        assert f.read_bytes < 64 * 1024
    small = _elf64_with_names(b"\0.comment\0", 1, b"clang version 18.1.8\0")
    assert elf_comments(small) == ("clang version 18.1.8",)
