"""Digests taken from the builder's own PKGDIR/Packages, on real binpkgs Portage wrote and indexed.

``share`` takes MD5/SHA1 from an entry that still describes its file and
then leaves the image out of Portage's digest check (``schema/share.md``
§4): the blocks must be exactly those of the full computation, and what the
remaining checks catch must still be refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from ipfsbin.binpkg import FileIdentity, read_binpkg_metadata
from ipfsbin.binpkg.digests import RecordedDigests
from ipfsbin.builder.bulk import inspect_package
from ipfsbin.builder.pkgindex import PackagesIndex
from ipfsbin.builder.publish import detect_host_facts
from ipfsbin.codec.cid import RAW, cid_for
from ipfsbin.errors import BinpkgError
from ipfsbin.trust.keys import SigningKey
from tests.playground.builder import BuilderPlayground
from tests.playground.craft import gpkg_parts

pytestmark = [pytest.mark.integration]


def _binpkgs(builder: BuilderPlayground) -> list[Path]:
    return sorted(builder.binpkgs.values())


def test_portage_records_the_digests_of_its_files(builder_playground: BuilderPlayground) -> None:
    index = PackagesIndex.read(builder_playground.pkgdir)
    for path in _binpkgs(builder_playground):
        recorded = index.recorded(path, FileIdentity.of(path))
        data = path.read_bytes()
        assert recorded == RecordedDigests(
            md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        ), path


def test_recorded_digests_give_the_blocks_of_the_full_computation(
    builder_playground: BuilderPlayground,
) -> None:
    host = detect_host_facts(config_root=builder_playground.eprefix)
    index = PackagesIndex.read(builder_playground.pkgdir)
    key = SigningKey.generate()
    compared = 0
    for path in _binpkgs(builder_playground):
        meta = read_binpkg_metadata(path, check_metadata=False)
        recorded = index.recorded(path, FileIdentity.of(path))
        assert recorded is not None
        try:
            hashed = inspect_package(meta, host=host)
        except BinpkgError:
            # refused whichever way (bindist, setuid...): refused with a recorded entry too
            with pytest.raises(BinpkgError):
                inspect_package(meta, host=host, recorded=recorded)
            continue
        taken = inspect_package(meta, host=host, recorded=recorded)
        assert taken == hashed
        assert taken.data is not None
        binpkg = cid_for(RAW, taken.data)
        assert [b[:2] for b in taken.prepared.objects(binpkg, key).blocks] == [
            b[:2] for b in hashed.prepared.objects(binpkg, key).blocks
        ]
        compared += 1
    assert compared >= 3


def test_a_wrong_md5_in_a_matching_entry_is_published_as_recorded(
    builder_playground: BuilderPlayground, tmp_path: Path
) -> None:
    """The value Portage wrote is taken, not checked: a client's Portage compares the file
    with it and refuses the download, so such a build cannot be installed (no other bytes)."""
    pkgdir = tmp_path / "pkgdir"
    path = pkgdir / "dev-libs" / "libfoo" / "libfoo-1-1.gpkg.tar"
    path.parent.mkdir(parents=True)
    shutil.copy(builder_playground.binpkgs["dev-libs/libfoo-1"], path)
    recorded = _indexed(path, pkgdir, md5="0" * 32)
    assert recorded is not None
    assert recorded.md5 == "0" * 32
    meta = read_binpkg_metadata(path, check_metadata=False)
    host = detect_host_facts(config_root=builder_playground.eprefix)
    info = inspect_package(meta, host=host, recorded=recorded).prepared.info
    data = path.read_bytes()
    assert (info.md5, info.sha1) == (
        "0" * 32,
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
    )
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def _rebuilt(src: Path, dst: Path, change: str) -> Path:
    """``src`` with one part's bytes changed and its original Manifest kept (sizes equal)."""
    prefix, parts = gpkg_parts(src)
    name = next(n for n in parts if n.startswith(change))
    data = bytearray(parts[name])
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0x5A for b in data[middle : middle + 8])
    parts[name] = bytes(data)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dst, "w", format=tarfile.USTAR_FORMAT) as tar:
        for part in ["gpkg-1", *[n for n in parts if n not in ("gpkg-1", "Manifest")], "Manifest"]:
            info = tarfile.TarInfo(f"{prefix}/{part}")
            info.size, info.mode = len(parts[part]), 0o644
            tar.addfile(info, io.BytesIO(parts[part]))
    return dst


def _indexed(path: Path, pkgdir: Path, md5: str | None = None) -> RecordedDigests | None:
    """Index ``path`` as Portage would, right after writing it; what the index then gives."""
    data, st = path.read_bytes(), path.stat()
    md5 = md5 or hashlib.md5(data, usedforsecurity=False).hexdigest()
    (pkgdir / "Packages").write_text(
        "VERSION: 0\n\n"
        f"CPV: dev-libs/libfoo-1\nMD5: {md5}\n"
        f"PATH: {path.relative_to(pkgdir).as_posix()}\n"
        f"SHA1: {hashlib.sha1(data, usedforsecurity=False).hexdigest()}\n"
        f"SIZE: {st.st_size}\nMTIME: {st.st_mtime_ns // 1_000_000_000}\n"
    )
    later = max(st.st_mtime_ns, st.st_ctime_ns) + 1_000
    os.utime(pkgdir / "Packages", ns=(later, later))
    return PackagesIndex.read(pkgdir).recorded(path, FileIdentity.of(path))


@pytest.mark.parametrize(
    ("part", "why"),
    [("metadata.tar", "Portage rejects this gpkg"), ("image.tar", "does not decompress")],
)
def test_a_damaged_part_is_refused_with_a_matching_entry_too(
    builder_playground: BuilderPlayground, tmp_path: Path, part: str, why: str
) -> None:
    """The metadata part keeps Portage's digest check; a damaged image stream fails the scan."""
    pkgdir = tmp_path / "pkgdir"
    path = _rebuilt(
        builder_playground.binpkgs["dev-libs/libfoo-1"],
        pkgdir / "dev-libs" / "libfoo" / "libfoo-1-1.gpkg.tar",
        part,
    )
    recorded = _indexed(path, pkgdir)
    assert recorded is not None
    host = detect_host_facts(config_root=builder_playground.eprefix)
    with pytest.raises(BinpkgError):
        inspect_package(read_binpkg_metadata(path, check_metadata=False), host=host)
    with pytest.raises(BinpkgError, match=why):
        meta = read_binpkg_metadata(path, check_metadata=False)
        inspect_package(meta, host=host, recorded=recorded)
