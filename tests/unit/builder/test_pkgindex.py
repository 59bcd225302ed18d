"""The builder's PKGDIR/Packages: MD5/SHA1 taken only for a file its entry still describes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ipfsbin.binpkg import FileIdentity
from ipfsbin.binpkg.digests import RecordedDigests
from ipfsbin.builder.pkgindex import PackagesIndex, packages_index

_HEADER = "ARCH: amd64\nPACKAGES: 1\nTIMESTAMP: 1700000000\nVERSION: 0\n"


def _stanza(path: str, data: bytes, mtime: int, **override: str) -> str:
    fields = {
        "CPV": "dev-libs/foo-1",
        "MD5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "PATH": path,
        "SHA1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "SIZE": str(len(data)),
        "MTIME": str(mtime),
        **override,
    }
    return "".join(f"{key}: {value}\n" for key, value in fields.items() if value)


def _pkgdir(tmp_path: Path, data: bytes = b"binpkg bytes\n") -> tuple[Path, Path]:
    pkgdir = tmp_path / "pkgdir"
    binpkg = pkgdir / "dev-libs" / "foo" / "foo-1-1.gpkg.tar"
    binpkg.parent.mkdir(parents=True)
    binpkg.write_bytes(data)
    os.utime(binpkg, ns=(1_700_000_000_250_000_000, 1_700_000_000_250_000_000))
    return pkgdir, binpkg


def _write_index(pkgdir: Path, *stanzas: str, written_s: int | None = None) -> None:
    index = pkgdir / "Packages"
    index.write_text("\n".join([_HEADER, *stanzas]))
    # Portage writes the index after the files it lists, its mtime its TIMESTAMP in seconds.
    if written_s is None:
        written_s = FileIdentity.of(next(pkgdir.rglob("*.gpkg.tar"))).ctime_ns // 1_000_000_000
    os.utime(index, (written_s, written_s))


def test_an_entry_that_describes_the_file_gives_its_digests(tmp_path: Path) -> None:
    pkgdir, binpkg = _pkgdir(tmp_path)
    data = binpkg.read_bytes()
    _write_index(pkgdir, _stanza("dev-libs/foo/foo-1-1.gpkg.tar", data, 1_700_000_000))
    recorded = PackagesIndex.read(pkgdir).recorded(binpkg, FileIdentity.of(binpkg))
    assert recorded == RecordedDigests(
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
    )


def test_size_or_mtime_that_differ_give_nothing(tmp_path: Path) -> None:
    pkgdir, binpkg = _pkgdir(tmp_path)
    data = binpkg.read_bytes()
    path = "dev-libs/foo/foo-1-1.gpkg.tar"
    for stanza in (
        _stanza(path, data, 1_700_000_001),
        _stanza(path, data, 1_700_000_000, SIZE=str(len(data) + 1)),
        _stanza(path, data, 1_700_000_000, MTIME="not a number"),
        _stanza(path, data, 1_700_000_000, MD5=""),
        _stanza(path, data, 1_700_000_000, SHA1="xyz"),
        _stanza("", data, 1_700_000_000),
        _stanza("foo-1-1.gpkg.tar", data, 1_700_000_000),
        _stanza("dev-libs/../dev-libs/foo/foo-1-1.gpkg.tar", data, 1_700_000_000),
    ):
        _write_index(pkgdir, stanza)
        assert PackagesIndex.read(pkgdir).recorded(binpkg, FileIdentity.of(binpkg)) is None


def test_a_file_changed_after_the_index_was_written_gives_nothing(tmp_path: Path) -> None:
    pkgdir, binpkg = _pkgdir(tmp_path)
    data = binpkg.read_bytes()
    _write_index(pkgdir, _stanza("dev-libs/foo/foo-1-1.gpkg.tar", data, 1_700_000_000))
    index = PackagesIndex.read(pkgdir)
    assert index.recorded(binpkg, FileIdentity.of(binpkg)) is not None
    # Rewritten in place, same size, mtime set back: changed after the index was written.
    binpkg.write_bytes(b"other  bytes\n")
    os.utime(binpkg, ns=(1_700_000_000_900_000_000, 1_700_000_000_900_000_000))
    changed = FileIdentity.of(binpkg).ctime_ns // 1_000_000_000
    os.utime(pkgdir / "Packages", (changed - 1, changed - 1))
    assert PackagesIndex.read(pkgdir).recorded(binpkg, FileIdentity.of(binpkg)) is None


def test_two_entries_for_one_path_give_nothing(tmp_path: Path) -> None:
    pkgdir, binpkg = _pkgdir(tmp_path)
    data = binpkg.read_bytes()
    path = "dev-libs/foo/foo-1-1.gpkg.tar"
    _write_index(
        pkgdir,
        _stanza(path, data, 1_700_000_000),
        _stanza(path, data, 1_700_000_000, MD5="0" * 32),
    )
    assert PackagesIndex.read(pkgdir).recorded(binpkg, FileIdentity.of(binpkg)) is None


def test_no_index_and_files_outside_pkgdir_give_nothing(tmp_path: Path) -> None:
    pkgdir, binpkg = _pkgdir(tmp_path)
    assert packages_index(pkgdir).recorded(binpkg, FileIdentity.of(binpkg)) is None
    _write_index(
        pkgdir, _stanza("dev-libs/foo/foo-1-1.gpkg.tar", binpkg.read_bytes(), 1_700_000_000)
    )
    outside = tmp_path / "foo-1-1.gpkg.tar"
    outside.write_bytes(binpkg.read_bytes())
    assert packages_index(pkgdir).recorded(outside, FileIdentity.of(binpkg)) is None


def test_the_index_is_read_again_when_portage_rewrites_it(tmp_path: Path) -> None:
    pkgdir, binpkg = _pkgdir(tmp_path)
    data = binpkg.read_bytes()
    path = "dev-libs/foo/foo-1-1.gpkg.tar"
    _write_index(pkgdir, _stanza(path, data, 1_700_000_001))
    assert packages_index(pkgdir).recorded(binpkg, FileIdentity.of(binpkg)) is None
    _write_index(pkgdir, _stanza(path, data, 1_700_000_000), "")
    assert packages_index(pkgdir).recorded(binpkg, FileIdentity.of(binpkg)) is not None
