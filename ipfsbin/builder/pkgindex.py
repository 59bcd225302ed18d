"""The MD5/SHA1 Portage recorded in the builder's own ``PKGDIR/Packages``, for files it describes.

Portage writes an entry (``PATH``, ``SIZE``, ``MTIME``, ``MD5``, ``SHA1``...)
for every binpkg it puts into PKGDIR, after the file is in place, and
``emaint binhost`` keeps it current. An entry is taken for a file only when
it still describes it as Portage itself decides that when it re-reads
PKGDIR (``binarytree._populate_local``: the same ``SIZE`` and the same
``MTIME`` in whole seconds), and when the index was written no earlier than
the file was last changed. What is safe about it, and what is always
hashed anyway, is in ``schema/share.md`` §4.

One index per PKGDIR is read per process and read again when the
``Packages`` file changes (the watcher's builds get their entries once
Portage writes them; until then their digests are hashed).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ipfsbin.binpkg import FileIdentity
from ipfsbin.binpkg.digests import RecordedDigests

__all__ = ["PackagesIndex", "packages_index"]

_MAX_INDEX_BYTES = 256 * 1024 * 1024
_NS = 1_000_000_000


@dataclass(frozen=True)
class _Entry:
    size: int
    mtime: int
    digests: RecordedDigests


@dataclass(frozen=True)
class PackagesIndex:
    """The entries of one ``Packages`` file, by the path relative to PKGDIR they name."""

    pkgdir: Path
    written_ns: int
    """The ``Packages`` file's own mtime (ns): an entry is no newer than this."""
    entries: dict[str, _Entry] = field(default_factory=dict)

    @classmethod
    def read(cls, pkgdir: Path) -> PackagesIndex:
        """The index of ``pkgdir``; empty when there is none or it cannot be read."""
        path = pkgdir / "Packages"
        try:
            with path.open("rb") as handle:
                st = os.fstat(handle.fileno())
                if st.st_size > _MAX_INDEX_BYTES:
                    return cls(pkgdir, 0)
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return cls(pkgdir, 0)
        return cls(pkgdir, st.st_mtime_ns, _parse(text))

    def recorded(self, path: Path, identity: FileIdentity) -> RecordedDigests | None:
        """MD5/SHA1 of the file at ``path`` with ``identity``, when its entry still describes it."""
        try:
            relative = path.relative_to(self.pkgdir).as_posix()
        except ValueError:
            return None
        entry = self.entries.get(relative)
        if entry is None:
            return None
        if entry.size != identity.size or entry.mtime != identity.mtime_ns // _NS:
            return None
        # Portage writes the index after the file; a file changed since is not the one indexed.
        # Whole seconds: Portage sets the index's mtime to its TIMESTAMP, in seconds.
        written = self.written_ns // _NS
        if identity.mtime_ns // _NS > written or identity.ctime_ns // _NS > written:
            return None
        return entry.digests


def _parse(text: str) -> dict[str, _Entry]:
    """Stanzas separated by blank lines; the first is the header, entries carry ``CPV``."""
    entries: dict[str, _Entry] = {}
    stanzas = text.split("\n\n")
    for stanza in stanzas[1:]:
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        entry = _entry(fields)
        if entry is not None:
            relative, found = entry
            # Two entries for one path: neither can be told to be the file's.
            entries[relative] = found if relative not in entries else _AMBIGUOUS
    return {path: entry for path, entry in entries.items() if entry is not _AMBIGUOUS}


def _entry(fields: dict[str, str]) -> tuple[str, _Entry] | None:
    raw_path = fields.get("PATH", "")
    relative = PurePosixPath(raw_path)
    if not raw_path or relative.is_absolute() or ".." in relative.parts:
        return None
    try:
        size, mtime = int(fields["SIZE"]), int(fields["MTIME"])
        digests = RecordedDigests(md5=fields["MD5"].lower(), sha1=fields["SHA1"].lower())
    except (KeyError, ValueError):
        return None
    return relative.as_posix(), _Entry(size, mtime, digests)


_AMBIGUOUS = _Entry(-1, -1, RecordedDigests(md5="0" * 32, sha1="0" * 40))
_LOCK = threading.Lock()
_CACHE: dict[Path, tuple[tuple[int, int, int], PackagesIndex]] = {}


def packages_index(pkgdir: Path) -> PackagesIndex:
    """The index of ``pkgdir``, read once per process and again when ``Packages`` changes."""
    try:
        st = (pkgdir / "Packages").stat()
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        return PackagesIndex(pkgdir, 0)
    with _LOCK:
        cached = _CACHE.get(pkgdir)
        if cached is not None and cached[0] == key:
            return cached[1]
        index = PackagesIndex.read(pkgdir)
        _CACHE[pkgdir] = (key, index)
        return index
