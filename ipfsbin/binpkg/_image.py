"""Stream the files of a binpkg's image without extracting anything to disk.

A GPKG holds ``<prefix>/image.tar[.zst|.xz|...]`` inside an uncompressed outer
tar; an XPAK file is a (usually bzip2- or zstd-) compressed tar followed by
the xpak segment. zstd, gzip, bzip2 and xz images are decompressed in this
process (:mod:`._compression`: the same bytes, without a process per
package); the others by the program Portage itself runs for that
compression, with Portage's own arguments (``lz4 -d``...), taken from
Portage's table.

Every member is checked as it streams by: names and hard links must stay
inside the image, device nodes and FIFOs are refused, and setuid/setgid
files only pass for a package the caller allows them in
(:data:`SETUID_PACKAGES`). ELF and ``ar`` files are spooled to a temporary
file (kept in memory only while small) so the ELF reader can seek to the
section headers and ``.comment`` alone: memory stays flat whatever the size
of a file.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

from ipfsbin.binpkg import _compression, _portage, _ustar
from ipfsbin.binpkg._format import BinpkgFormat
from ipfsbin.binpkg.elf import AR_MAGIC, ELF_MAGIC, ar_ranges, elf_comments
from ipfsbin.errors import BinpkgError

__all__ = [
    "SETUID_PACKAGES",
    "ImageFile",
    "ImageScan",
    "image_elf_comments",
    "iter_gpkg_image",
    "iter_xpak_image",
]

# ELF files bigger than this are not spooled to look for .comment; any
# package has smaller objects that say the same.
MAX_ELF_BYTES = 256 * 1024 * 1024
# Spooled ELF files stay in memory up to this size, then go to a temporary file.
_SPOOL_IN_MEMORY = 1 << 20

_CHUNK = 1 << 20

SETUID_PACKAGES: frozenset[str] = frozenset(
    {
        "app-admin/sudo",
        "app-admin/doas",
        "net-misc/iputils",
        "sys-apps/shadow",
        "sys-apps/util-linux",
        "sys-auth/polkit",
        "sys-apps/dbus",
        "sys-libs/glibc",
        "sys-process/cronie",
        "x11-base/xorg-server",
        "app-misc/screen",
        "net-fs/nfs-utils",
        "sys-fs/fuse",
        "sys-fs/fuse-common",
        "mail-mta/postfix",
    }
)
"""Packages (category/name) that install setuid/setgid programs by design.

Gentoo installs these with the bits set (passwd, su, mount, sudo, the
dbus launch helper, fusermount, crontab...). Any other package whose image
holds a setuid or setgid file is refused unless the publisher names it too.
"""


@dataclass(frozen=True, kw_only=True)
class ImageScan:
    """How to read an image: may it hold setuid/setgid files; are ELF files wanted."""

    setuid_ok: bool = False
    copy_elf: bool = True


ImageFile = tuple[str, BinaryIO | bytes]
"""(path inside the image, a seekable copy of an ELF/ar file, or the first bytes of another)."""


class _Bounded(io.RawIOBase):
    """The first ``limit`` bytes of a file object (the tar in front of an xpak segment)."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self._raw = raw
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        data = self._raw.read(min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)


@contextmanager
def _external(source: IO[bytes], cmd: list[str], what: str) -> Iterator[IO[bytes]]:
    """Pipe ``source`` through Portage's decompressor command; yields its output stream."""
    program = shutil.which(cmd[0])
    if program is None:
        raise BinpkgError(
            f"{what}: needs the {cmd[0]} program to decompress, and it is not on PATH",
            hint=f"install {cmd[0]}",
        )
    proc = subprocess.Popen(  # noqa: S603 - fixed decompressor, no shell
        [program, *cmd[1:]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    if proc.stdin is None or proc.stdout is None:
        raise RuntimeError("Popen gave no pipes")
    stdin, stdout = proc.stdin, proc.stdout

    def feed() -> None:
        try:
            while chunk := source.read(_CHUNK):
                stdin.write(chunk)
        except Exception:  # noqa: S110
            # A broken pipe (the reader stopped) or unreadable input: either way
            # the decompressor sees a short stream and its exit status reports it.
            pass
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    thread = threading.Thread(target=feed, name="ipfsbin-decompress-feed", daemon=True)
    thread.start()
    finished = False
    try:
        yield stdout
        finished = True
    finally:
        if not finished:
            proc.kill()
        # Drain: the tail after the tar's end blocks, or what is left after a kill.
        try:
            while stdout.read(_CHUNK):
                pass
        except (OSError, ValueError):
            pass
        stdout.close()
        thread.join(timeout=30)
        code = proc.wait(timeout=30)
    if code != 0:
        raise BinpkgError(
            f"{what}: {cmd[0]} failed to decompress the image (exit status {code}); "
            "the binary package is truncated or corrupt",
            hint="rebuild the package or fetch it again",
        )


def _iter_tar(stream: IO[bytes], what: str, scan: ImageScan) -> Iterator[ImageFile]:
    try:
        # 1 MiB reads: skipping a large non-ELF member in a stream means reading it through.
        with tarfile.open(fileobj=stream, mode="r|", bufsize=_CHUNK) as tar:
            files: set[str] = set()
            for member in tar:
                _check_member(member, what, scan.setuid_ok)
                if member.islnk() and posixpath.normpath(member.linkname) not in files:
                    raise BinpkgError(
                        f"{what}: image member {member.name!r} is a hard link to "
                        f"{member.linkname!r}, which is not a file before it in the image",
                        hint=_HINT_HOSTILE,
                    )
                if not member.isreg():
                    continue
                files.add(posixpath.normpath(member.name))
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                head = handle.read(8)
                if (
                    scan.copy_elf
                    and (head.startswith(b"\x7fELF") or head.startswith(b"!<arch>\n"))
                    and member.size <= MAX_ELF_BYTES
                ):
                    with _spooled(head, handle) as copy:
                        yield member.name, copy
                else:
                    yield member.name, head
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BinpkgError(
            f"{what}: the image is not a readable tar ({_one_line(exc)})",
            hint="the binary package is truncated or corrupt; rebuild it or fetch it again",
        ) from exc


@contextmanager
def _spooled(head: bytes, rest: IO[bytes]) -> Iterator[BinaryIO]:
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY, prefix="ipfsbin-elf-") as copy:
        copy.write(head)
        shutil.copyfileobj(rest, copy, _CHUNK)
        copy.seek(0)
        yield copy  # type: ignore[misc]


_HINT_HOSTILE = "do not install or share this package: Portage would not install it as it is"


def _check_member(member: tarfile.TarInfo, what: str, setuid_ok: bool) -> None:
    """Refuse what Portage refuses to merge, and what a shared binpkg has no reason to hold."""
    _check_name(member.name, what)
    if member.islnk():
        _check_name(member.linkname, what, link=member.name)
    elif member.ischr() or member.isblk():
        raise BinpkgError(
            f"{what}: image member {member.name!r} is a device node", hint=_HINT_HOSTILE
        )
    elif member.isfifo():
        raise BinpkgError(f"{what}: image member {member.name!r} is a FIFO", hint=_HINT_HOSTILE)
    elif not (member.isreg() or member.isdir() or member.issym()):
        raise BinpkgError(
            f"{what}: image member {member.name!r} has an unknown type {member.type!r}",
            hint=_HINT_HOSTILE,
        )
    if member.mode & (stat.S_ISUID | stat.S_ISGID) and not member.isdir() and not setuid_ok:
        bits = " and ".join(
            word
            for word, bit in (("setuid", stat.S_ISUID), ("setgid", stat.S_ISGID))
            if member.mode & bit
        )
        raise BinpkgError(
            f"{what}: image member {member.name!r} is {bits} "
            f"(mode {member.mode:o}), and this package is not one known to ship such files",
            hint="publish it only if it must be; name the package with --allow-setuid",
        )


def _check_name(name: str, what: str, *, link: str | None = None) -> None:
    normal = posixpath.normpath(name)
    if (
        name.startswith("/")
        or normal == ".."
        or normal.startswith("../")
        or ("/../" in f"/{name}/")
    ):
        if link is not None:
            raise BinpkgError(
                f"{what}: image member {link!r} is a hard link to {name!r}, "
                "outside the image directory",
                hint=_HINT_HOSTILE,
            )
        raise BinpkgError(
            f"{what}: image member {name!r} leaves the image directory (absolute or '..' path)",
            hint="do not install or share this package: it was not made by Portage",
        )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _iter_compressed(
    source: IO[bytes], compression: str | None, what: str, scan: ImageScan
) -> Iterator[ImageFile]:
    if compression is None:
        yield from _iter_tar(source, what, scan)
        return
    opener = _compression.OPEN.get(compression)
    if opener is None:
        with _external(source, _portage.decompress_command(compression, what), what) as out:
            yield from _iter_tar(out, what, scan)
        return
    with _Decompressed(opener(source), compression, what) as out:
        yield from _iter_tar(cast(IO[bytes], out), what, scan)


class _Decompressed(io.RawIOBase):
    """A library's decompressing reader whose failures read as the decompressor's exit."""

    def __init__(self, stream: io.BufferedIOBase, compression: str, what: str) -> None:
        self._stream = stream
        self._compression = compression
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._stream.read(len(buffer))
        except _compression.ERRORS as exc:
            raise BinpkgError(
                f"{self._what}: the {self._compression} image does not decompress "
                f"({_one_line(exc)}); the binary package is truncated or corrupt",
                hint="rebuild the package or fetch it again",
            ) from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


def iter_gpkg_image(path: Path, scan: ImageScan) -> Iterator[ImageFile]:
    """Yield the regular files of a GPKG's image (ELF and ar files as seekable copies)."""
    what = str(path)
    try:
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below, or by the with
    except OSError as exc:
        raise BinpkgError(f"{what}: not a tar archive ({_one_line(exc)})") from exc
    with raw:
        listed = _ustar.list_file(cast(BinaryIO, raw), os.fstat(raw.fileno()).st_size, 64)
        if listed is not None:
            found = next((m for m in listed if _is_image_part(m.name)), None)
            if found is None:
                raise BinpkgError(f"{what}: the gpkg has no image.tar member")
            compression = _image_compression(found.name, what)
            if not found.is_file:
                raise BinpkgError(f"{what}: the image member is not a regular file")
            raw.seek(found.offset)
            part = io.BufferedReader(_Bounded(cast(BinaryIO, raw), found.size), _CHUNK)
            yield from _iter_compressed(part, compression, what, scan)
            return
    try:
        container = tarfile.open(path, mode="r:")
    except (tarfile.TarError, OSError) as exc:
        raise BinpkgError(f"{what}: not a tar archive ({_one_line(exc)})") from exc
    with container:
        image = next((m for m in container.getmembers() if _is_image_part(m.name)), None)
        if image is None:
            raise BinpkgError(f"{what}: the gpkg has no image.tar member")
        compression = _image_compression(image.name, what)
        handle = container.extractfile(image)
        if handle is None:
            raise BinpkgError(f"{what}: the image member is not a regular file")
        yield from _iter_compressed(handle, compression, what, scan)


def _is_image_part(name: str) -> bool:
    base = posixpath.basename(name)
    return base.startswith("image.tar") and not base.endswith(".sig")


def _image_compression(name: str, what: str) -> str | None:
    base = posixpath.basename(name)
    compression = _portage.gpkg_compression(base)
    if compression is None and base != "image.tar":
        raise BinpkgError(f"{what}: unknown image compression {base[len('image.tar') :]!r}")
    return compression


def iter_xpak_image(path: Path, tar_size: int, scan: ImageScan) -> Iterator[ImageFile]:
    """Yield the regular files of an XPAK binpkg whose tar part is ``tar_size`` bytes."""
    what = str(path)
    compression = _portage.xpak_compression(path)
    with open(path, "rb") as raw:
        bounded = io.BufferedReader(_Bounded(raw, tar_size))
        yield from _iter_compressed(bounded, compression, what, scan)


def image_elf_comments(
    path: Path, fmt: BinpkgFormat, tar_size: int, scan: ImageScan
) -> list[tuple[str, ...]]:
    """The ``.comment`` strings of each ELF file (and each ELF member of a static library)."""
    files = iter_gpkg_image(path, scan) if fmt == "gpkg" else iter_xpak_image(path, tar_size, scan)
    per_file: list[tuple[str, ...]] = []
    for _name, data in files:
        if isinstance(data, bytes):
            continue
        head = data.read(len(AR_MAGIC))
        if head.startswith(ELF_MAGIC):
            ranges: list[tuple[int, int | None]] = [(0, None)]
        elif head == AR_MAGIC:
            ranges = [
                (start, length)
                for start, length in ar_ranges(data)
                if _starts_with(data, start, ELF_MAGIC)
            ]
        else:
            continue
        for start, length in ranges:
            comments = elf_comments(data, start=start, size=length)
            if comments is not None:
                per_file.append(comments)
    return per_file


def _starts_with(file: BinaryIO, offset: int, magic: bytes) -> bool:
    file.seek(offset)
    return file.read(len(magic)) == magic
