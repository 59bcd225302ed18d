"""Stream the files of a binpkg's image without extracting anything to disk.

A GPKG holds ``<prefix>/image.tar[.zst|.xz|...]`` inside an uncompressed outer
tar; an XPAK file is a (usually bzip2- or zstd-) compressed tar followed by
the xpak segment. Compressions the standard library lacks go through the
external decompressor Portage itself uses (``zstd -dc`` and friends).
"""

from __future__ import annotations

import io
import posixpath
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO

from ipfsbin.errors import BinpkgError

__all__ = ["ImageFile", "iter_gpkg_image", "iter_xpak_image"]

# ELF files bigger than this are not read into memory to look for .comment;
# any package has smaller objects that say the same.
MAX_ELF_BYTES = 256 * 1024 * 1024

_CHUNK = 1 << 20

# Compressions tarfile streams itself, and those that need Portage's programs.
_TAR_MODES = {"": "r|", ".gz": "r|gz", ".bz2": "r|bz2", ".xz": "r|xz"}
_COMMANDS = {
    ".zst": ["zstd", "-dcq"],
    ".lz4": ["lz4", "-dcq"],
    ".lz": ["lzip", "-dcq"],
    ".lzo": ["lzop", "-dcq"],
}

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"BZh", ".bz2"),
    (b"\x1f\x8b", ".gz"),
    (b"\xfd7zXZ\x00", ".xz"),
    (b"\x28\xb5\x2f\xfd", ".zst"),
    (b"\x04\x22\x4d\x18", ".lz4"),
    (b"LZIP", ".lz"),
    (b"\x89LZO", ".lzo"),
)

ImageFile = tuple[str, bytes]
"""(path inside the image, the first bytes or the whole file for ELF/ar files)."""


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
    """Pipe ``source`` through an external decompressor; yields its output stream."""
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


def _iter_tar(stream: IO[bytes], mode: str, what: str) -> Iterator[ImageFile]:
    try:
        # 1 MiB reads: skipping a large non-ELF member in a stream means reading it through.
        with tarfile.open(  # type: ignore[call-overload]
            fileobj=stream, mode=mode, bufsize=_CHUNK
        ) as tar:
            for member in tar:
                _check_name(member.name, what)
                if not member.isreg():
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                head = handle.read(8)
                if (head.startswith(b"\x7fELF") or head.startswith(b"!<arch>\n")) and (
                    member.size <= MAX_ELF_BYTES
                ):
                    yield member.name, head + handle.read()
                else:
                    yield member.name, head
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BinpkgError(
            f"{what}: the image is not a readable tar ({_one_line(exc)})",
            hint="the binary package is truncated or corrupt; rebuild it or fetch it again",
        ) from exc


def _check_name(name: str, what: str) -> None:
    normal = posixpath.normpath(name)
    if (
        name.startswith("/")
        or normal == ".."
        or normal.startswith("../")
        or ("/../" in f"/{name}/")
    ):
        raise BinpkgError(
            f"{what}: image member {name!r} leaves the image directory (absolute or '..' path)",
            hint="do not install or share this package: it was not made by Portage",
        )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _iter_compressed(source: IO[bytes], suffix: str, what: str) -> Iterator[ImageFile]:
    if suffix in _TAR_MODES:
        yield from _iter_tar(source, _TAR_MODES[suffix], what)
        return
    with _external(source, _COMMANDS[suffix], what) as out:
        yield from _iter_tar(out, "r|", what)


def iter_gpkg_image(path: Path) -> Iterator[ImageFile]:
    """Yield the regular files of a GPKG's image (ELF and ar files in full)."""
    what = str(path)
    try:
        container = tarfile.open(path, mode="r:")
    except (tarfile.TarError, OSError) as exc:
        raise BinpkgError(f"{what}: not a tar archive ({_one_line(exc)})") from exc
    with container:
        image = None
        suffix = ""
        for member in container.getmembers():
            base = posixpath.basename(member.name)
            if base.startswith("image.tar") and not base.endswith(".sig"):
                suffix = base[len("image.tar") :]
                image = member
                break
        if image is None:
            raise BinpkgError(f"{what}: the gpkg has no image.tar member")
        if suffix not in _TAR_MODES and suffix not in _COMMANDS:
            raise BinpkgError(f"{what}: unknown image compression {suffix!r}")
        handle = container.extractfile(image)
        if handle is None:
            raise BinpkgError(f"{what}: the image member is not a regular file")
        yield from _iter_compressed(handle, suffix, what)


def iter_xpak_image(path: Path, tar_size: int) -> Iterator[ImageFile]:
    """Yield the regular files of an XPAK binpkg whose tar part is ``tar_size`` bytes."""
    what = str(path)
    with open(path, "rb") as raw:
        head = raw.read(8)
        raw.seek(0)
        suffix = next((s for magic, s in _MAGIC if head.startswith(magic)), "")
        bounded = io.BufferedReader(_Bounded(raw, tar_size))
        yield from _iter_compressed(bounded, suffix, what)
