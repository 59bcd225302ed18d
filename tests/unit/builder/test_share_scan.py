"""Which files in PKGDIR are builds to share."""

from __future__ import annotations

from pathlib import Path

from ipfsbin.builder.share import is_binpkg_name, scan_pkgdir


def test_binpkg_names() -> None:
    assert is_binpkg_name("foo-1-1.gpkg.tar") and is_binpkg_name("foo-1.tbz2")
    assert is_binpkg_name("foo-1-2.xpak")
    assert not is_binpkg_name(".foo-1-1.gpkg.tar")  # Portage still writing it
    assert not is_binpkg_name("Packages") and not is_binpkg_name("foo-1.gpkg.tar.partial")


def test_scan_finds_builds_in_path_order_and_skips_hidden_directories(tmp_path: Path) -> None:
    for name in ("b/x/x-1-1.gpkg.tar", "a/y/y-1.tbz2", ".tmp/z/z-1-1.gpkg.tar", "Packages"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"1234")
    found = scan_pkgdir(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p, _, _ in found] == [
        "a/y/y-1.tbz2",
        "b/x/x-1-1.gpkg.tar",
    ]
    assert all(size == 4 and mtime > 0 for _, size, mtime in found)
