"""The fast tar listing: tarfile's names, sizes and offsets, or None to let tarfile decide."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from ipfsbin.binpkg import _ustar


def _tar(members: list[tuple[str, bytes | None]], fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _with_tarfile(data: bytes) -> list[tuple[str, int, int, bool]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return [(m.name, m.offset_data, m.size, m.isreg()) for m in tar.getmembers()]


def _listed(found: list[_ustar.Member] | None) -> list[tuple[str, int, int, bool]] | None:
    return None if found is None else [(m.name, m.offset, m.size, m.is_file) for m in found]


PLAIN = [
    ("pkg-1/gpkg-1", b""),
    ("pkg-1/metadata.tar.zst", b"m" * 3000),
    ("pkg-1/dir/", None),
    ("pkg-1/image.tar.zst", b"i" * 512),
    ("pkg-1/Manifest", b"DATA gpkg-1 0\n"),
]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT])
def test_plain_tars_list_as_tarfile_lists_them(tmp_path: Path, fmt: int) -> None:
    data = _tar(PLAIN, fmt)
    expected = _with_tarfile(data)
    assert _listed(_ustar.list_bytes(data, 64)) == expected
    path = tmp_path / "c.tar"
    path.write_bytes(data)
    with path.open("rb") as handle:
        assert _listed(_ustar.list_file(handle, len(data), 64)) == expected


def test_without_end_blocks_lists_the_same(tmp_path: Path) -> None:
    data = _tar(PLAIN)
    last = _with_tarfile(data)[-1]
    cut = data[: last[1] + 512]  # the last member's data, padded: no zero blocks after it
    assert _listed(_ustar.list_bytes(cut, 64)) == _with_tarfile(cut)


@pytest.mark.parametrize(
    "data",
    [
        _tar([("x" * 150, b"long name")], tarfile.GNU_FORMAT),  # a GNU long-name header
        _tar([("pkg-1/\u00e9t\u00e9", b"pax")], tarfile.PAX_FORMAT),  # a pax header
        _tar([("a" * 120 + "/" + "b" * 20, b"prefix")], tarfile.USTAR_FORMAT),  # ustar prefix
        _tar(PLAIN)[:1500],  # cut inside a member's data
        b"\x00" * 1024,  # no member at all
        b"not a tar" * 100,
    ],
)
def test_anything_else_is_left_to_tarfile(data: bytes) -> None:
    assert _ustar.list_bytes(data, 64) is None


def test_a_link_or_a_bad_checksum_is_left_to_tarfile() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("pkg-1/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "gpkg-1"
        tar.addfile(info)
    assert _ustar.list_bytes(out.getvalue(), 64) is None
    data = bytearray(_tar(PLAIN))
    data[0] ^= 1
    assert _ustar.list_bytes(bytes(data), 64) is None


def test_more_members_than_allowed_is_left_to_tarfile() -> None:
    data = _tar([(f"pkg-1/{n}", b"x") for n in range(10)])
    assert _ustar.list_bytes(data, 9) is None
    assert _ustar.list_bytes(data, 10) is not None
