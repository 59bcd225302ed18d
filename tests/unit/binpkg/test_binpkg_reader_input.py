"""Bad input that needs no real binpkg: each gives one BinpkgError line, no Portage traceback."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

import ipfsbin.binpkg
from ipfsbin.binpkg import read_binpkg
from ipfsbin.errors import BinpkgError


def test_public_names() -> None:
    assert sorted(ipfsbin.binpkg.__all__) == sorted(
        [
            "NO_COMMENT",
            "NO_ELF",
            "SETUID_PACKAGES",
            "BinpkgFormat",
            "BinpkgInfo",
            "BinpkgMetadata",
            "BinpkgOrigin",
            "Compiler",
            "CompilerReport",
            "Digester",
            "FileDigests",
            "FileIdentity",
            "check_binpkg",
            "hash_file",
            "read_binpkg",
            "read_binpkg_contents",
            "read_binpkg_metadata",
            "verify_unchanged",
        ]
    )


def _plain_tar(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("hello/README")
        data = b"not a binary package\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_nonexistent_path(tmp_path: Path) -> None:
    with pytest.raises(BinpkgError, match="no such file") as err:
        read_binpkg(tmp_path / "missing-1.gpkg.tar")
    assert err.value.hint and ".gpkg.tar" in err.value.hint


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(BinpkgError, match="is a directory"):
        read_binpkg(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty-1.gpkg.tar"
    path.write_bytes(b"")
    with pytest.raises(BinpkgError, match=r"is empty \(0 bytes\)"):
        read_binpkg(path)


def test_plain_tar_renamed_gpkg(tmp_path: Path) -> None:
    path = _plain_tar(tmp_path / "plain-1.gpkg.tar")
    with pytest.raises(BinpkgError, match="is a tar archive without the gpkg-1 marker"):
        read_binpkg(path)


def test_random_bytes_named_gpkg(tmp_path: Path) -> None:
    path = tmp_path / "noise-1.gpkg.tar"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(BinpkgError, match="neither a tar archive nor an xpak"):
        read_binpkg(path)


@pytest.mark.parametrize("suffix", [".tbz2", ".xpak"])
def test_legacy_name_without_xpak_segment(tmp_path: Path, suffix: str) -> None:
    path = _plain_tar(tmp_path / f"plain-1{suffix}")
    with pytest.raises(BinpkgError, match="has no xpak segment"):
        read_binpkg(path)


def test_errors_are_single_lines(tmp_path: Path) -> None:
    path = tmp_path / "noise-1.tbz2"
    path.write_bytes(b"XPAKSTOP" * 100)
    with pytest.raises(BinpkgError) as err:
        read_binpkg(path)
    assert "\n" not in err.value.message
