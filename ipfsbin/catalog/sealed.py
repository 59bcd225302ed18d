"""Files a process keeps for the next one, sealed so that only a whole file of this code is taken.

A sealed file is a magic line, then a header (format version, a
fingerprint of the code the contents stand for, the payload's length and
its SHA-256), then the payload. :func:`write_sealed` replaces the file by a
temporary file beside it, ``fsync`` and a rename (a process killed at any
moment leaves the old file or the new one); :func:`read_sealed` gives the
payload back only when every field matches, and otherwise says why not.
Used by the kept builds (:mod:`ipfsbin.catalog.kept`) and the kept listing
(:mod:`ipfsbin.serve.listing`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "HEAD",
    "FileRefused",
    "SealedReader",
    "code_fingerprint",
    "open_sealed",
    "package_sources",
    "read_sealed",
    "write_sealed",
]

HEAD = struct.Struct(">I32sQ32s")
"""Format version, code fingerprint, payload length, payload SHA-256."""

_PACKAGE = Path(__file__).resolve().parents[1]


class FileRefused(Exception):
    """A sealed file that must not be used; ``reason`` says why, for one log line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def code_fingerprint(version: int, names: Iterable[str]) -> bytes:
    """SHA-256 over ``version`` and the source of ``names`` (paths under ``ipfsbin/``).

    ``OSError`` when a source is missing (installed without its sources).
    """
    digest = hashlib.sha256(b"%d\n" % version)
    for name in names:
        source = (_PACKAGE / name).read_bytes()
        digest.update(b"%s %d\n" % (name.encode(), len(source)))
        digest.update(source)
    return digest.digest()


def package_sources() -> list[str]:
    """Every module of the package, as paths under ``ipfsbin/``, sorted."""
    return sorted(str(p.relative_to(_PACKAGE)) for p in _PACKAGE.rglob("*.py"))


def write_sealed(
    path: Path, payload: Iterable[bytes], *, magic: bytes, version: int, fingerprint: bytes
) -> int:
    """Replace ``path`` with the sealed ``payload`` (its pieces in order); its length in bytes."""
    parts = list(payload)
    digest = hashlib.sha256()
    length = 0
    for part in parts:
        digest.update(part)
        length += len(part)
    head = magic + HEAD.pack(version, fingerprint, length, digest.digest())
    path.parent.mkdir(parents=True, exist_ok=True)
    # one name: a file a killed writer left is overwritten by the next
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(head)
            for part in parts:
                f.write(part)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power loss
    finally:
        os.close(directory)
    return length


def _open(
    path: Path, *, magic: bytes, version: int, fingerprint: Callable[[], bytes], what: str
) -> tuple[BinaryIO, int, bytes] | None:
    """The open file after its header, with the payload length and digest it declares."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FileRefused(f"cannot be read: {exc}") from exc
    try:
        head = f.read(len(magic) + HEAD.size)
        if len(head) < len(magic) + HEAD.size or not head.startswith(magic):
            raise FileRefused(f"is not a {what} file or is cut short")
        found, code, length, digest = HEAD.unpack_from(head, len(magic))
        if found != version:
            raise FileRefused(f"has format version {found}, this code reads {version}")
        try:
            ours = fingerprint()
        except OSError as exc:  # installed without its sources: nothing to compare with
            raise FileRefused(f"cannot be matched with this code: {exc}") from exc
        if code != ours:
            raise FileRefused("was written by other code")
        left = os.fstat(f.fileno()).st_size - len(head)
        if left != length:
            raise FileRefused(f"holds {left} bytes after its header, which says {length}")
    except BaseException:
        f.close()
        raise
    return f, length, digest


def read_sealed(
    path: Path, *, magic: bytes, version: int, fingerprint: Callable[[], bytes], what: str
) -> memoryview | None:
    """The payload of ``path``; None when there is no file, :class:`FileRefused` when it must not
    be used (``what`` names the kind of file in the reason)."""
    opened = _open(path, magic=magic, version=version, fingerprint=fingerprint, what=what)
    if opened is None:
        return None
    f, length, digest = opened
    with f:
        try:
            payload = memoryview(f.read())
        except OSError as exc:
            raise FileRefused(f"cannot be read: {exc}") from exc
    if len(payload) != length:
        raise FileRefused(f"holds {len(payload)} bytes after its header, which says {length}")
    if hashlib.sha256(payload).digest() != digest:
        raise FileRefused("does not match its digest")
    return payload


class SealedReader:
    """A sealed file's payload read piece by piece, each piece hashed as it is read.

    Nothing read may be used before :meth:`finish` returned: only then is
    the whole payload known to match its digest. Holds no copy of the file
    beside the pieces taken from it.
    """

    def __init__(self, f: BinaryIO, length: int, digest: bytes) -> None:
        self._file = f
        self._left = length
        self._digest = digest
        self._hash = hashlib.sha256()

    def read(self, size: int) -> bytes:
        """The next ``size`` bytes; :class:`FileRefused` when the payload ends before."""
        if size > self._left:
            raise FileRefused(f"has a field running past its end ({size} bytes, {self._left} left)")
        try:
            piece = self._file.read(size)
        except OSError as exc:
            raise FileRefused(f"cannot be read: {exc}") from exc
        if len(piece) != size:
            raise FileRefused("was cut short while it was read")
        self._left -= size
        self._hash.update(piece)
        return piece

    def finish(self) -> None:
        """:class:`FileRefused` unless the whole payload was read and matches its digest."""
        if self._left:
            raise FileRefused(f"has {self._left} bytes after its last field")
        if self._hash.digest() != self._digest:
            raise FileRefused("does not match its digest")


@contextlib.contextmanager
def open_sealed(
    path: Path, *, magic: bytes, version: int, fingerprint: Callable[[], bytes], what: str
) -> Iterator[SealedReader | None]:
    """A reader of ``path``'s payload (None when there is no file); :class:`FileRefused` as
    :func:`read_sealed`."""
    opened = _open(path, magic=magic, version=version, fingerprint=fingerprint, what=what)
    if opened is None:
        yield None
        return
    f, length, digest = opened
    with f:
        yield SealedReader(f, length, digest)
