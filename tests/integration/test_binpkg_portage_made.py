"""Binpkgs as real Portage makes them: every compressor, long zstd windows, signatures,
uncompressed parts, hostile image members and files that are no binpkg at all."""

from __future__ import annotations

import os
import re
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ipfsbin.binpkg import NO_ELF, Compiler, check_binpkg, read_binpkg, read_binpkg_metadata
from ipfsbin.binpkg._metadata_part import read_metadata_part
from ipfsbin.errors import BinpkgError
from tests.playground.builder import BuilderPlayground
from tests.playground.craft import replace_signed_metadata, rewrite_gpkg
from tests.playground.fixtures import builder_playground  # noqa: F401
from tests.playground.signing import gpg_available, keyring, sign_gpkg

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HELLO, STRIPPED, LIBFOO = "app-misc/hello-1", "app-misc/stripped-1", "dev-libs/libfoo-1"


def _compressors() -> list[str]:
    """Every compression in Portage's table whose program is on this machine."""
    from portage.util.compression_probe import _compressors

    names = {"bzip2": "bzip2"}  # its command is ${PORTAGE_BZIP2_COMMAND}
    return sorted(
        name
        for name, entry in _compressors.items()
        if shutil.which(names.get(name, entry["compress"].split()[0]))
    )


def test_this_machine_has_every_compressor_portage_knows() -> None:
    # scripts/lib/setup.sh installs them; a missing one would shrink the test below.
    from portage.util.compression_probe import _compressors as table

    assert _compressors() == sorted(table)


def _gcc() -> Compiler:
    import subprocess

    version = subprocess.run(
        ["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Compiler(family="gcc", version=version)


@pytest.mark.parametrize("fmt", ["gpkg", "xpak"])
@pytest.mark.parametrize("compression", _compressors())
def test_every_compressor(
    compression: str,
    fmt: str,
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = builder_playground.quickpkg(
        f"={HELLO}", tmp_path, {"BINPKG_COMPRESS": compression, "BINPKG_FORMAT": fmt}
    )
    capfd.readouterr()
    info = read_binpkg(path)
    assert info.format == fmt
    assert info.compiler == _gcc()
    assert capfd.readouterr() == ("", "")
    if fmt == "gpkg":
        _read_directly_as_portage_reads(path, in_process=compression in IN_PROCESS)


# Compressions whose gpkg metadata part sharing decompresses itself (schema/share.md §4).
IN_PROCESS = {"bzip2", "gzip", "xz", "zstd"}


def _read_directly_as_portage_reads(path: Path, *, in_process: bool) -> None:
    """The metadata read without Portage's check equals Portage's read, key for key."""
    direct = read_metadata_part(path)
    assert (direct is not None) == in_process
    fast = read_binpkg_metadata(path, check_metadata=False)
    checked = read_binpkg_metadata(path)
    assert fast == checked
    assert dict(fast.metadata) == dict(checked.metadata)


@pytest.mark.parametrize("fmt", ["gpkg", "xpak"])
def test_zstd_with_a_long_window(
    fmt: str,
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = builder_playground.build_binpkg(
        "app-misc/hello",
        tmp_path,
        {
            "BINPKG_FORMAT": fmt,
            "BINPKG_COMPRESS": "zstd",
            "BINPKG_COMPRESS_FLAGS_ZSTD": "--long=31",
        },
    )
    info = read_binpkg(path)
    assert info.built_from_source and info.origin == "built"
    assert info.compiler == _gcc()
    if fmt == "gpkg":
        _read_directly_as_portage_reads(path, in_process=True)


def test_uncompressed_gpkg_parts(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = builder_playground.quickpkg(f"={HELLO}", tmp_path, {"BINPKG_COMPRESS": "none"})
    with tarfile.open(path) as tar:
        assert any(n.endswith("/metadata.tar") for n in tar.getnames())
    capfd.readouterr()
    assert read_binpkg(path).compiler == _gcc()
    assert capfd.readouterr() == ("", "")
    _read_directly_as_portage_reads(path, in_process=True)


# -- signatures ---------------------------------------------------------------------

needs_gpg = pytest.mark.skipif(not gpg_available(), reason="needs gpg and flock")


@pytest.fixture(scope="module")
def builder_keyring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    home = tmp_path_factory.mktemp("gnupg")
    with keyring(home) as fingerprint:
        yield home, fingerprint


@pytest.fixture(scope="module")
def signed(
    builder_playground: BuilderPlayground,  # noqa: F811
    builder_keyring: tuple[Path, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    home, key = builder_keyring
    src = builder_playground.binpkgs[STRIPPED]
    return sign_gpkg(
        builder_playground, src, tmp_path_factory.mktemp("signed") / src.name, home, key
    )


@pytest.fixture
def quietly_with(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Iterator[Callable[[Path], None]]:
    """Call with a GnuPG home to verify against; the test must print nothing at all."""

    def use(home: Path) -> None:
        monkeypatch.setenv("BINPKG_GPG_VERIFY_GPG_HOME", str(home))
        monkeypatch.setenv("NO_COLOR", "1")
        capfd.readouterr()

    yield use
    assert capfd.readouterr() == ("", "")


@needs_gpg
def test_signed_gpkg_verifies_silently_with_the_builders_keyring(
    signed: Path, builder_keyring: tuple[Path, str], quietly_with: Callable[[Path], None]
) -> None:
    with tarfile.open(signed) as tar:
        assert any(n.endswith(".sig") for n in tar.getnames())
    quietly_with(builder_keyring[0])
    info = read_binpkg(signed)
    assert info.signed and info.cpv == STRIPPED


@needs_gpg
def test_signed_gpkg_with_an_unknown_key_is_refused_in_one_line(
    signed: Path,
    builder_keyring: tuple[Path, str],
    tmp_path: Path,
    quietly_with: Callable[[Path], None],
) -> None:
    other = tmp_path / "other-gnupg"
    with keyring(other, "someone else"):
        quietly_with(other)
        fingerprint = builder_keyring[1]
        with pytest.raises(BinpkgError, match=f"signed by key {fingerprint[-16:]}.*not in the"):
            read_binpkg_metadata(signed)


@needs_gpg
def test_metadata_changed_after_signing_is_refused(
    signed: Path,
    builder_keyring: tuple[Path, str],
    tmp_path: Path,
    quietly_with: Callable[[Path], None],
) -> None:
    tampered = replace_signed_metadata(
        signed, tmp_path / signed.name, "CFLAGS", "-O3 -ffast-math\n"
    )
    quietly_with(builder_keyring[0])
    with pytest.raises(BinpkgError, match="changed after signing") as err:
        read_binpkg(tampered)
    assert "\n" not in err.value.message
    # Sharing reads the metadata without Portage's check of it (schema/share.md §4):
    # the full check that comes before anything is published still refuses it.
    meta = read_binpkg_metadata(tampered, check_metadata=False)
    assert meta.cflags == "-O3 -ffast-math"
    with pytest.raises(BinpkgError, match="changed after signing") as err:
        check_binpkg(meta)
    assert "\n" not in err.value.message


def test_unsigned_gpkg_needs_no_keyring(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
    quietly_with: Callable[[Path], None],
) -> None:
    quietly_with(tmp_path / "no-such-keyring")
    assert not read_binpkg(builder_playground.binpkgs[STRIPPED]).signed


# -- provenance ---------------------------------------------------------------------


def test_tests_ran_is_recorded(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    try:
        for features, expected in (("test", True), ("-test", False)):
            path = builder_playground.build_binpkg(
                "app-misc/tested", tmp_path / features, {"FEATURES": features}
            )
            info = read_binpkg(path)
            assert info.tests_ran is expected
            assert ("test" in info.use) is expected
            assert info.compiler == NO_ELF
    finally:
        # the playground is shared by the session: its installed set stays as it was built
        builder_playground.emerge("--unmerge", "app-misc/tested")


# -- hostile members ----------------------------------------------------------------


def _member(name: str, kind: bytes, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


HOSTILE = {
    "hard link out of the image": (
        _member("image/usr/bin/shadow", tarfile.LNKTYPE, linkname="../../etc/shadow"),
        "is a hard link to '../../etc/shadow', outside the image",
    ),
    "absolute hard link": (
        _member("image/usr/bin/passwd", tarfile.LNKTYPE, linkname="/etc/passwd"),
        "outside the image",
    ),
    "hard link to a file not in the image": (
        _member("image/usr/bin/ghost", tarfile.LNKTYPE, linkname="etc/shadow"),
        "which is not a file before it in the image",
    ),
    "character device": (
        _member("image/dev/mem", tarfile.CHRTYPE, devmajor=1, devminor=1),
        "is a device node",
    ),
    "block device": (
        _member("image/dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
        "is a device node",
    ),
    "fifo": (_member("image/run/pipe", tarfile.FIFOTYPE), "is a FIFO"),
    "setuid file": (
        _member("image/usr/bin/rootme", tarfile.REGTYPE, mode=0o4755, size=4),
        "is setuid (mode 4755)",
    ),
    "setgid file": (
        _member("image/usr/bin/groupme", tarfile.REGTYPE, mode=0o2755, size=4),
        "is setgid (mode 2755)",
    ),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_image_member_is_refused(
    kind: str,
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    member, fragment = HOSTILE[kind]
    src = builder_playground.binpkgs[LIBFOO]
    bad = rewrite_gpkg(src, tmp_path / src.name, extra_members=[member])
    read_binpkg_metadata(bad)  # the cheap read does not open the image
    with pytest.raises(BinpkgError, match=re.escape(fragment)):
        read_binpkg(bad)
    # Also when a recorded compiler stands in for the ELF scan.
    with pytest.raises(BinpkgError, match=re.escape(fragment)):
        read_binpkg(bad, compiler=Compiler(family="gcc", version="13.2.0"))


def test_setuid_file_of_a_package_known_to_ship_them(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    member = _member("image/usr/bin/su", tarfile.REGTYPE, mode=0o4711, size=4)
    src = builder_playground.binpkgs[LIBFOO]
    bad = rewrite_gpkg(src, tmp_path / src.name, extra_members=[member])
    assert read_binpkg(bad, setuid_packages={"dev-libs/libfoo"}).cpv == LIBFOO
    # A hard link inside the image is what Portage itself writes for hard-linked files.
    inside = _member("image/usr/bin/su2", tarfile.LNKTYPE, linkname="image/usr/bin/su")
    fine = rewrite_gpkg(src, tmp_path / "libfoo-1-2.gpkg.tar", extra_members=[member, inside])
    assert read_binpkg(fine, setuid_packages={"dev-libs/libfoo"}).cpv == LIBFOO


# -- files that are no binpkg -------------------------------------------------------


def _bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs /proc/self/io")
@pytest.mark.parametrize("name", ["zeros-1.gpkg.tar", "zeros-1.tbz2", "zeros-1.xpak", "zeros"])
def test_a_large_sparse_file_is_refused_without_reading_it(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(1 << 30)
    before = _bytes_read()
    with pytest.raises(BinpkgError, match="xpak|gpkg"):
        read_binpkg(path)
    # Recognising it reads its ends; nothing near its 1 GiB.
    assert _bytes_read() - before < 4 * 1024 * 1024
    os.unlink(path)


def test_a_tar_of_many_members_is_refused_before_portage_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "many-1.gpkg.tar"
    with tarfile.open(path, "w") as tar:
        for i in range(10_000):
            tar.addfile(tarfile.TarInfo(f"many-1/gpkg-1{'' if i == 0 else f'.{i}'}"))
    before = _bytes_read()
    with pytest.raises(BinpkgError, match="more than 64 members"):
        read_binpkg(path)
    assert _bytes_read() - before < 1024 * 1024
