"""Read binpkgs that the real emerge built in a Portage playground (GPKG and XPAK)."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from ipfsbin.binpkg import (
    NO_COMMENT,
    NO_ELF,
    BinpkgInfo,
    BinpkgMetadata,
    Compiler,
    check_binpkg,
    read_binpkg,
    read_binpkg_contents,
    read_binpkg_metadata,
)
from ipfsbin.errors import BinpkgError
from tests.playground import ebuilds
from tests.playground.builder import BuilderPlayground, parse_packages_index
from tests.playground.craft import drop_xpak_keys, gpkg_parts, rewrite_gpkg
from tests.playground.fixtures import builder_playground  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HELLO, LEGACY, STRIPPED = "app-misc/hello-1", "app-misc/legacy-1", "app-misc/stripped-1"
USETEST, LIBFOO, USESFOO = "app-misc/usetest-1", "dev-libs/libfoo-1", "app-misc/usesfoo-1"


@pytest.fixture(scope="module")
def infos(builder_playground: BuilderPlayground) -> dict[str, BinpkgInfo]:  # noqa: F811
    return {cpv: read_binpkg(path) for cpv, path in builder_playground.binpkgs.items()}


def _gcc_version() -> str:
    return subprocess.run(
        ["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_every_package_was_built(builder_playground: BuilderPlayground) -> None:  # noqa: F811
    assert set(builder_playground.binpkgs) == {HELLO, LEGACY, STRIPPED, USETEST, LIBFOO, USESFOO}
    assert builder_playground.binpkgs[HELLO].name.endswith(".gpkg.tar")
    assert builder_playground.binpkgs[LEGACY].suffix in (".xpak", ".tbz2")


def test_common_metadata(infos: dict[str, BinpkgInfo]) -> None:
    chost = ebuilds.host_chost()
    for cpv, info in infos.items():
        assert info.cpv == cpv
        assert info.chost == chost
        assert info.cbuild == chost
        assert info.eapi == "8"
        assert info.repository == "test_repo"
        assert info.cflags == ebuilds.CFLAGS
        assert info.ldflags == ebuilds.LDFLAGS
        assert info.arch == "x86"  # the playground profile's ARCH, from environment.bz2
        assert info.keywords == ("x86",)
        assert info.license == "MIT"
        assert info.build_id == 1
        assert info.build_time and info.build_time > 1_600_000_000
        assert "buildpkg" in info.features
        assert info.built_from_source
        assert info.format == ("xpak" if cpv == LEGACY else "gpkg")


def test_use_and_iuse_as_configured(infos: dict[str, BinpkgInfo]) -> None:
    info = infos[USETEST]
    assert set(info.use) == {"foo", "bar", "baz"}  # default, make.conf, package.use
    assert set(info.iuse) == {"+foo", "bar", "baz", "-qux"}
    assert {"foo", "bar", "baz", "qux"} <= set(info.iuse_effective)
    # USE-reduced: qux? ( ... ) dropped, foo? ( ... ) kept.
    assert info.rdepend == "app-misc/hello"


def test_slot_and_resolved_subslot(infos: dict[str, BinpkgInfo]) -> None:
    assert (infos[LIBFOO].slot, infos[LIBFOO].subslot) == ("0", "1")
    assert (infos[HELLO].slot, infos[HELLO].subslot) == ("0", "0")
    assert infos[USESFOO].rdepend == "dev-libs/libfoo:0/1="
    assert infos[USESFOO].depend == "dev-libs/libfoo:0/1="


def test_compiler_from_elf_comment(infos: dict[str, BinpkgInfo]) -> None:
    gcc = Compiler(family="gcc", version=_gcc_version())
    assert infos[HELLO].compiler == gcc
    assert (gcc, 1) in infos[HELLO].compilers_seen
    assert any(c.startswith("GCC: ") for c in infos[HELLO].elf_comments)
    assert infos[LEGACY].compiler == gcc


def test_package_without_elf_has_no_compiler(infos: dict[str, BinpkgInfo]) -> None:
    for cpv in (LIBFOO, USESFOO, USETEST):
        assert infos[cpv].compiler == NO_ELF
        assert infos[cpv].compilers_seen == ()


def test_stripped_package(infos: dict[str, BinpkgInfo]) -> None:
    if shutil.which("scanelf") is None:
        pytest.skip("without scanelf (pax-utils) Portage does not strip")
    assert infos[STRIPPED].compiler == NO_COMMENT
    assert "libc.so.6" in infos[STRIPPED].requires


def test_compiler_override_skips_the_scan(builder_playground: BuilderPlayground) -> None:  # noqa: F811
    recorded = Compiler(family="clang", version="17.0.6")
    info = read_binpkg(builder_playground.binpkgs[HELLO], compiler=recorded)
    assert info.compiler == recorded
    assert info.compilers_seen == ()


def test_restrictions(infos: dict[str, BinpkgInfo]) -> None:
    assert infos[HELLO].bindist_restricted and infos[HELLO].restrict == "bindist"
    assert not infos[USETEST].bindist_restricted
    assert not any(info.fetch_restricted for info in infos.values())


def test_hashes_match_file_and_portage_index(
    builder_playground: BuilderPlayground,  # noqa: F811
    infos: dict[str, BinpkgInfo],
) -> None:
    index = {
        s["CPV"]: s
        for s in parse_packages_index((builder_playground.pkgdir / "Packages").read_text())
    }
    for cpv, info in infos.items():
        data = info.path.read_bytes()
        assert info.size == len(data)
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert info.md5 == hashlib.md5(data).hexdigest()
        assert info.sha1 == hashlib.sha1(data).hexdigest()
        assert (index[cpv]["SIZE"], index[cpv]["MD5"], index[cpv]["SHA1"]) == (
            str(info.size),
            info.md5,
            info.sha1,
        )


def test_quickpkg_output_is_not_built_from_source(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = builder_playground.quickpkg(f"={HELLO}", tmp_path / "quick")
    info = read_binpkg(path)
    assert info.cpv == HELLO
    assert not info.built_from_source
    assert info.compiler == Compiler(family="gcc", version=_gcc_version())


# Bad input made from the good packages.


def test_truncated_gpkg(builder_playground: BuilderPlayground, tmp_path: Path) -> None:  # noqa: F811
    import tarfile

    src = builder_playground.binpkgs[HELLO]
    data = src.read_bytes()
    with tarfile.open(src) as tar:
        # Cut inside each member's data and inside each member's header.
        cuts = [m.offset_data + m.size // 2 for m in tar.getmembers() if m.size > 1]
        cuts += [m.offset + 100 for m in tar.getmembers()[1:]]
    for cut in cuts:
        path = tmp_path / f"hello-1-{cut}.gpkg.tar"
        path.write_bytes(data[:cut])
        with pytest.raises(BinpkgError, match="cut short|Portage rejects") as err:
            read_binpkg(path)
        assert "\n" not in err.value.message
        assert str(path) in err.value.message


def test_corrupt_image_in_gpkg(builder_playground: BuilderPlayground, tmp_path: Path) -> None:  # noqa: F811
    data = bytearray(builder_playground.binpkgs[HELLO].read_bytes())
    # The image member comes after gpkg-1 and the metadata; flip a byte in it.
    offset = data.index(b"image.tar.zst") + 512 + 100
    data[offset] ^= 0xFF
    path = tmp_path / "hello-1-1.gpkg.tar"
    path.write_bytes(bytes(data))
    with pytest.raises(BinpkgError, match="Portage rejects this gpkg"):
        read_binpkg(path)


def test_metadata_the_manifest_does_not_vouch_for_is_refused_by_the_full_check(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Sharing reads metadata without Portage's check of it (schema/share.md §4): a metadata
    part changed under the old Manifest reads, and the full check before publishing refuses it."""
    import tarfile

    src = builder_playground.binpkgs[HELLO]
    changed = rewrite_gpkg(src, tmp_path / "changed.gpkg.tar", set_metadata={"CFLAGS": b"-O3\n"})
    _, changed_parts = gpkg_parts(changed)
    prefix, parts = gpkg_parts(src)
    stale = tmp_path / "hello-1-1.gpkg.tar"
    with tarfile.open(stale, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in parts.items():
            if name.startswith("metadata.tar"):
                data = changed_parts[name]
            member = tarfile.TarInfo(f"{prefix}/{name}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    meta = read_binpkg_metadata(stale, check_metadata=False)
    assert meta.cflags == "-O3"
    with pytest.raises(BinpkgError, match="Portage rejects this gpkg") as err:
        check_binpkg(meta)
    assert "\n" not in err.value.message
    with pytest.raises(BinpkgError, match="Portage rejects this gpkg"):
        read_binpkg_metadata(stale)


@pytest.mark.parametrize("member", ["image/../../etc/evil", "/etc/evil", "../evil"])
def test_image_member_escaping(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
    member: str,
) -> None:
    path = rewrite_gpkg(
        builder_playground.binpkgs[HELLO],
        tmp_path / "hello-1-1.gpkg.tar",
        extra_image=[(member, b"evil\n")],
    )
    with pytest.raises(BinpkgError, match="leaves the image directory"):
        read_binpkg(path)


def test_rewritten_gpkg_still_reads(builder_playground: BuilderPlayground, tmp_path: Path) -> None:  # noqa: F811
    # The crafting helper itself makes valid packages.
    path = rewrite_gpkg(builder_playground.binpkgs[HELLO], tmp_path / "hello-1-1.gpkg.tar")
    assert read_binpkg(path).compiler.family == "gcc"


def test_gpkg_without_chost(builder_playground: BuilderPlayground, tmp_path: Path) -> None:  # noqa: F811
    path = rewrite_gpkg(
        builder_playground.binpkgs[HELLO], tmp_path / "hello-1-1.gpkg.tar", drop_metadata=["CHOST"]
    )
    with pytest.raises(BinpkgError, match="records no CHOST"):
        read_binpkg(path)


def test_xpak_without_chost(builder_playground: BuilderPlayground, tmp_path: Path) -> None:  # noqa: F811
    src = builder_playground.binpkgs[LEGACY]
    path = drop_xpak_keys(src, tmp_path / src.name, ["CHOST"])
    with pytest.raises(BinpkgError, match="records no CHOST"):
        read_binpkg(path)


def test_truncated_and_corrupt_xpak(builder_playground: BuilderPlayground, tmp_path: Path) -> None:  # noqa: F811
    data = builder_playground.binpkgs[LEGACY].read_bytes()
    cut = tmp_path / "legacy-1-1.xpak"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BinpkgError, match="has no xpak segment"):
        read_binpkg(cut)
    corrupt = bytearray(data)
    for i in range(40, 400):
        corrupt[i] ^= 0x5A
    bad = tmp_path / "legacy-1-2.xpak"
    bad.write_bytes(bytes(corrupt))
    with pytest.raises(BinpkgError, match="truncated or corrupt|not a readable tar"):
        read_binpkg(bad)


def test_gpkg_renamed_tbz2_and_xpak_renamed_gpkg(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    gpkg = tmp_path / "hello-1.tbz2"
    shutil.copyfile(builder_playground.binpkgs[HELLO], gpkg)
    with pytest.raises(BinpkgError, match="has no xpak segment"):
        read_binpkg(gpkg)
    xpak = tmp_path / "legacy-1.gpkg.tar"
    shutil.copyfile(builder_playground.binpkgs[LEGACY], xpak)
    with pytest.raises(BinpkgError, match="holds an xpak segment"):
        read_binpkg(xpak)


def test_container_with_escaping_names(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    import tarfile

    src = builder_playground.binpkgs[HELLO]
    for bad_name in ("../gpkg-1", "/abs/gpkg-1"):
        path = tmp_path / "evil-1.gpkg.tar"
        with tarfile.open(src) as good, tarfile.open(path, "w") as out:
            for member in good.getmembers():
                handle = good.extractfile(member)
                out.addfile(member, handle)
            extra = tarfile.TarInfo(bad_name)
            out.addfile(extra)
        with pytest.raises(BinpkgError, match="Portage rejects this gpkg"):
            read_binpkg(path)


# The cheap read, and the expensive rest.


def test_metadata_read_agrees_with_full_read(
    builder_playground: BuilderPlayground,  # noqa: F811
    infos: dict[str, BinpkgInfo],
) -> None:
    for cpv, path in builder_playground.binpkgs.items():
        meta = read_binpkg_metadata(path)
        assert type(meta) is BinpkgMetadata
        for name in BinpkgMetadata.__dataclass_fields__:
            assert getattr(meta, name) == getattr(infos[cpv], name), (cpv, name)
        assert meta.identity is not None and meta.identity.size == infos[cpv].size
        assert read_binpkg_contents(meta) == infos[cpv]


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [("dotdot", "leaves the image directory"), ("corrupt-image", "Portage rejects this gpkg")],
)
def test_metadata_read_leaves_the_image_to_the_full_check(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
    kind: str,
    fragment: str,
) -> None:
    src = builder_playground.binpkgs[HELLO]
    path = tmp_path / "hello-1-1.gpkg.tar"
    if kind == "dotdot":
        rewrite_gpkg(src, path, extra_image=[("image/../../etc/evil", b"evil\n")])
    else:
        data = bytearray(src.read_bytes())
        data[data.index(b"image.tar.zst") + 512 + 100] ^= 0xFF
        path.write_bytes(bytes(data))
    meta = read_binpkg_metadata(path)
    assert meta.cpv == HELLO and meta.bindist_restricted
    with pytest.raises(BinpkgError, match=fragment):
        check_binpkg(meta)
    with pytest.raises(BinpkgError, match=fragment):
        read_binpkg_contents(meta)


def test_file_replaced_after_the_metadata_read(
    builder_playground: BuilderPlayground,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "usetest-1-1.gpkg.tar"
    shutil.copyfile(builder_playground.binpkgs[USETEST], path)
    meta = read_binpkg_metadata(path)
    # Portage writes binpkgs to a temporary file and renames it into place.
    other = tmp_path / "other.gpkg.tar"
    shutil.copyfile(builder_playground.binpkgs[USESFOO], other)
    other.replace(path)
    with pytest.raises(BinpkgError, match="changed while it was being read"):
        read_binpkg_contents(meta)
