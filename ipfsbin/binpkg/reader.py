"""Read a Gentoo binary package (GPKG or legacy XPAK) into a :class:`BinpkgInfo`.

Two costs, kept apart so a caller can act on the cheap one first:

* :func:`read_binpkg_metadata` reads the container and the metadata
  (Portage checks the GPKG container and its metadata part): milliseconds,
  whatever the size.
* :func:`check_binpkg` does what needs the whole file: Portage's check of
  every GPKG part against its Manifest, a full read of the image (member
  names, decompression) and the compiler found in its ELF files; the
  digests (:mod:`ipfsbin.binpkg.digests`) hash the whole file too.

:func:`read_binpkg` does both, the checks and the hashing side by side, and
joins the results with :meth:`BinpkgInfo.from_checks`.
"""

from __future__ import annotations

import bz2
import os
import re
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from ipfsbin.binpkg import _image, _metadata_part, _portage, _signatures
from ipfsbin.binpkg._format import HINT_CORRUPT, BinpkgFormat, identify
from ipfsbin.binpkg._image import SETUID_PACKAGES
from ipfsbin.binpkg.digests import FileDigests, RecordedDigests, hash_file
from ipfsbin.binpkg.elf import Compiler, CompilerReport, choose_compiler
from ipfsbin.errors import BinpkgError

__all__ = [
    "BinpkgFormat",
    "BinpkgInfo",
    "BinpkgMetadata",
    "BinpkgOrigin",
    "FileIdentity",
    "check_binpkg",
    "read_binpkg",
    "read_binpkg_contents",
    "read_binpkg_metadata",
    "verify_unchanged",
]

BinpkgOrigin = Literal["built", "quickpkg"]

_HINT_CHANGED = "wait until Portage has finished writing it, then try again"
_ARCH_RE = re.compile(rb'^declare -x ARCH="([^"\n]*)"$', re.MULTILINE)
_MAX_ENVIRONMENT = 64 * 1024 * 1024
_HEX = re.compile(r"^[0-9a-f]+$")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


@dataclass(frozen=True, kw_only=True, slots=True)
class FileIdentity:
    """Which file, in which state: device, inode, size and change times from ``stat``.

    Parts of a check that read the file separately (Portage, the image scan,
    the hashing or uploading pass) saw the same bytes when the identity
    taken before the first read equals the one taken after the last: a file
    rewritten in place changes its mtime/ctime, one replaced by a rename
    changes its inode.
    """

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def from_stat(cls, st: os.stat_result) -> FileIdentity:
        return cls(
            device=st.st_dev,
            inode=st.st_ino,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            ctime_ns=st.st_ctime_ns,
        )

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        """The identity of ``path`` now; ``BinpkgError`` when it is gone."""
        try:
            return cls.from_stat(path.stat())
        except OSError as exc:
            raise BinpkgError(
                f"{path}: cannot be read any more ({exc.strerror})", hint=_HINT_CHANGED
            ) from exc


@dataclass(frozen=True, kw_only=True)
class BinpkgMetadata:
    """What one binary package records about itself, read without hashing the whole file.

    Text fields hold Portage's value with whitespace runs collapsed to one
    space; a key the package does not record is the empty string.
    ``use``/``iuse``/``iuse_effective``/``keywords``/``features`` are split
    into words (``iuse`` keeps its ``+``/``-`` defaults). Dependency strings
    are already USE-reduced by Portage, with each ``:=`` resolved to the
    slot/sub-slot the package was built against.

    ``built_from_source`` is False for a binpkg made from an installed package
    (quickpkg): only those carry the installed-package files CONTENTS and
    COUNTER, which ``emerge --buildpkg`` never writes; ``origin`` says the
    same in words. ``tests_ran`` is True when Portage ran the package's test
    phase for this build (FEATURES=test, and RESTRICT does not hold ``test``).
    ``signed`` is True for a GPKG that carries a signature (verified against
    the builder's keyring when its metadata was read). ``identity`` is the
    file's :class:`FileIdentity` when it was read.
    """

    path: Path
    format: BinpkgFormat
    cpv: str
    chost: str
    cbuild: str
    arch: str
    eapi: str
    slot: str
    subslot: str
    repository: str
    cflags: str
    cxxflags: str
    ldflags: str
    asflags: str
    cc: str
    cxx: str
    use: tuple[str, ...]
    iuse: tuple[str, ...]
    iuse_effective: tuple[str, ...]
    depend: str
    rdepend: str
    bdepend: str
    pdepend: str
    provides: str
    requires: str
    keywords: tuple[str, ...]
    license: str
    restrict: str
    defined_phases: str
    build_time: int | None
    build_id: int | None
    features: tuple[str, ...]
    built_from_source: bool
    bindist_restricted: bool
    fetch_restricted: bool
    tests_ran: bool = False
    signed: bool = False
    metadata: Mapping[str, str] = field(compare=False, repr=False)
    identity: FileIdentity | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.format not in ("gpkg", "xpak"):
            raise ValueError(f"format must be 'gpkg' or 'xpak', got {self.format!r}")
        if not self.chost:
            raise ValueError("chost must not be empty")
        category, _, pf = self.cpv.partition("/")
        if not category or not pf or "/" in pf:
            raise ValueError(f"cpv must be category/package-version, got {self.cpv!r}")
        if not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    # A read-only mapping does not pickle; its dict does (``share`` checks in worker processes).
    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "metadata": dict(self.metadata)}

    def __setstate__(self, state: dict[str, object]) -> None:
        metadata = state["metadata"]
        assert isinstance(metadata, dict)  # noqa: S101 - written by __getstate__
        self.__dict__.update(state, metadata=MappingProxyType(metadata))

    @property
    def category(self) -> str:
        return self.cpv.partition("/")[0]

    @property
    def origin(self) -> BinpkgOrigin:
        """How the binpkg was made: ``built`` from source, or ``quickpkg`` from an installed one."""
        return "built" if self.built_from_source else "quickpkg"

    @property
    def cp(self) -> str:
        """Category and package name without the version (``app-misc/hello``)."""
        return _portage.cpv_key(self.cpv)

    @property
    def pf(self) -> str:
        """Package name, version and revision (``hello-1.0-r1``)."""
        return self.cpv.partition("/")[2]


@dataclass(frozen=True, kw_only=True)
class BinpkgInfo(BinpkgMetadata):
    """A binary package fully read: its metadata, hashes and the compiler found in it."""

    size: int
    sha256: str
    md5: str
    sha1: str
    compiler: Compiler
    compilers_seen: tuple[tuple[Compiler, int], ...]
    elf_comments: tuple[str, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size < 0:
            raise ValueError(f"size must not be negative, got {self.size}")
        for name, length in (("sha256", 64), ("md5", 32), ("sha1", 40)):
            value = getattr(self, name)
            if len(value) != length or not _HEX.match(value):
                raise ValueError(f"{name} must be {length} lowercase hex digits, got {value!r}")

    @classmethod
    def from_checks(
        cls, meta: BinpkgMetadata, *, digests: FileDigests, report: CompilerReport
    ) -> BinpkgInfo:
        """Join the cheap read, the file's digests and :func:`check_binpkg`'s report.

        Raises ``BinpkgError`` when the digests are of another size than the
        file had when its metadata was read.
        """
        if meta.identity is not None and digests.size != meta.identity.size:
            raise BinpkgError(
                f"{meta.path}: the file changed while it was being read "
                f"({meta.identity.size} bytes before, {digests.size} hashed)",
                hint=_HINT_CHANGED,
            )
        values = {f: getattr(meta, f) for f in BinpkgMetadata.__dataclass_fields__}
        return cls(
            **values,
            size=digests.size,
            sha256=digests.sha256,
            md5=digests.md5,
            sha1=digests.sha1,
            compiler=report.compiler,
            compilers_seen=report.seen,
            elf_comments=report.comments,
        )


def read_binpkg_metadata(path: str | Path, *, check_metadata: bool = True) -> BinpkgMetadata:
    """The cheap read: container, metadata and the checks on them, without hashing the file.

    Raises :class:`BinpkgError` with one line for anything that is not a
    readable binpkg with a CHOST and a CATEGORY/PF. What it does not check
    (the image's Manifest checksums, names inside the image, the digests)
    is :func:`check_binpkg`'s and :func:`~ipfsbin.binpkg.digests.hash_file`'s.

    With ``check_metadata`` False a GPKG's metadata part is read directly
    (:mod:`ipfsbin.binpkg._metadata_part`), without Portage's check of it
    against the Manifest: only for a caller that runs :func:`check_binpkg`
    (which checks every part) before it trusts anything read here.
    Anything that read cannot take as Portage would goes to Portage.
    """
    path = Path(path)
    fmt, st = identify(path)
    identity = FileIdentity.from_stat(st)
    if fmt == "gpkg":
        direct = None if check_metadata else _metadata_part.read_metadata_part(path)
        raw = direct if direct is not None else _portage.gpkg_metadata(path)
    else:
        raw = _portage.xpak_metadata(path)
    meta = {key: _text(value) for key, value in raw.items() if _is_text_key(key)}

    chost = meta.get("CHOST", "")
    if not chost:
        raise BinpkgError(
            f"{path}: the binary package records no CHOST",
            hint="it cannot be matched to any platform; rebuild it with a current Portage",
        )
    category, pf = meta.get("CATEGORY", ""), meta.get("PF", "")
    if not category or not pf:
        raise BinpkgError(
            f"{path}: the binary package records no CATEGORY/PF (got {category!r}/{pf!r})",
            hint=HINT_CORRUPT,
        )
    slot, _, subslot = meta.get("SLOT", "").partition("/")
    use = _words(meta.get("USE", ""))
    restrict_words = _restrict_words(meta.get("RESTRICT", ""), use)
    return BinpkgMetadata(
        path=path,
        format=fmt,
        cpv=f"{category}/{pf}",
        chost=chost,
        cbuild=meta.get("CBUILD", ""),
        arch=meta.get("ARCH", "") or _arch_from_environment(raw.get("environment.bz2")),
        eapi=meta.get("EAPI", ""),
        slot=slot,
        subslot=subslot or slot,
        repository=meta.get("repository", ""),
        cflags=meta.get("CFLAGS", ""),
        cxxflags=meta.get("CXXFLAGS", ""),
        ldflags=meta.get("LDFLAGS", ""),
        asflags=meta.get("ASFLAGS", ""),
        cc=meta.get("CC", ""),
        cxx=meta.get("CXX", ""),
        use=use,
        iuse=_words(meta.get("IUSE", "")),
        iuse_effective=_words(meta.get("IUSE_EFFECTIVE", "")),
        depend=meta.get("DEPEND", ""),
        rdepend=meta.get("RDEPEND", ""),
        bdepend=meta.get("BDEPEND", ""),
        pdepend=meta.get("PDEPEND", ""),
        provides=meta.get("PROVIDES", ""),
        requires=meta.get("REQUIRES", ""),
        keywords=_words(meta.get("KEYWORDS", "")),
        license=meta.get("LICENSE", ""),
        restrict=meta.get("RESTRICT", ""),
        defined_phases=meta.get("DEFINED_PHASES", ""),
        build_time=_int_or_none(meta.get("BUILD_TIME", "")),
        build_id=_int_or_none(meta.get("BUILD_ID", "")),
        features=_words(meta.get("FEATURES", "")),
        built_from_source="CONTENTS" not in raw and "COUNTER" not in raw,
        bindist_restricted="bindist" in restrict_words,
        fetch_restricted="fetch" in restrict_words,
        tests_ran="test" in _words(meta.get("FEATURES", "")) and "test" not in restrict_words,
        signed=fmt == "gpkg" and _signatures.gpkg_signed(path),
        metadata=meta,
        identity=identity,
    )


_SIDE_BY_SIDE_BYTES = 1 << 20
"""Up to this size a gpkg's image is scanned after Portage's check, not beside it: starting a
thread costs more than the overlap saves (milliseconds each on a loaded machine)."""


def check_binpkg(
    meta: BinpkgMetadata,
    *,
    compiler: Compiler | None = None,
    setuid_packages: Collection[str] = SETUID_PACKAGES,
    image_digests: bool = True,
) -> CompilerReport:
    """The checks that read the whole package; the compiler its ELF files name.

    For a GPKG, Portage checks every part against the Manifest checksums
    (and its signatures, when it is signed); for both formats the image is
    read to its end: every member must stay inside the image, be a regular
    file, directory, symlink or a hard link within the image, and be setuid
    or setgid only when the package's category/name is in
    ``setuid_packages``; a corrupt compressed stream fails. The ``.comment``
    sections of its ELF files name the compiler; ``compiler`` stands in for
    that scan with a value recorded at build time (the members are still
    checked). Raises :class:`BinpkgError`. Safe to run in a thread beside the
    hashing of the same file; for a GPKG, Portage's check and the image scan
    run side by side too (one after the other for a small file), and Portage's
    verdict is reported first.

    ``image_digests`` False leaves a GPKG's image part out of Portage's digest
    check (its size is still checked against the Manifest, the other parts by
    digest, a signed gpkg's signature): only for a file whose Packages entry
    Portage wrote after writing it (``schema/share.md`` §4); the image is
    still read to its end and decompressed.
    """
    scan = _image.ImageScan(setuid_ok=meta.cp in setuid_packages, copy_elf=compiler is None)
    size = meta.identity.size if meta.identity is not None else None
    if meta.format == "xpak":
        report = _compiler_report(meta, scan)
    elif size is not None and size <= _SIDE_BY_SIDE_BYTES:
        _portage.verify_gpkg(meta.path, image=image_digests)
        report = _compiler_report(meta, scan)
    else:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ipfsbin-scan") as pool:
            scanning = pool.submit(_compiler_report, meta, scan)
            try:
                _portage.verify_gpkg(meta.path, image=image_digests)
            except BinpkgError:
                scanning.exception()  # wait for the scan; Portage's verdict is the one to report
                raise
            report = scanning.result()
    if compiler is not None:
        return CompilerReport(compiler=compiler, seen=(), comments=(), elf_files=0)
    return report


def _compiler_report(meta: BinpkgMetadata, scan: _image.ImageScan) -> CompilerReport:
    tar_size = 0
    if meta.format == "xpak":
        layout = _portage.xpak_layout(meta.path)
        if layout is None:
            raise BinpkgError(
                f"{meta.path}: the xpak segment is gone (the file changed while it was read)",
                hint=_HINT_CHANGED,
            )
        tar_size = layout.tar_size
    return choose_compiler(_image.image_elf_comments(meta.path, meta.format, tar_size, scan))


def read_binpkg(
    path: str | Path,
    *,
    compiler: Compiler | None = None,
    setuid_packages: Collection[str] = SETUID_PACKAGES,
) -> BinpkgInfo:
    """Read the binpkg at ``path``; raises :class:`BinpkgError` with one line for bad input.

    ``compiler`` overrides the ELF scan with a value recorded at build time
    (the image's ELF files are then not read); without it the compiler comes
    from the ``.comment`` sections of the package's ELF files. Same as
    :func:`read_binpkg_metadata` followed by :func:`read_binpkg_contents`.
    """
    return read_binpkg_contents(
        read_binpkg_metadata(path), compiler=compiler, setuid_packages=setuid_packages
    )


def read_binpkg_contents(
    meta: BinpkgMetadata,
    *,
    compiler: Compiler | None = None,
    setuid_packages: Collection[str] = SETUID_PACKAGES,
    recorded: RecordedDigests | None = None,
    image_digests: bool = True,
) -> BinpkgInfo:
    """The expensive rest of :func:`read_binpkg`: checks and digests, side by side.

    :func:`check_binpkg` runs in a thread while the file is hashed; the file
    must still be the one ``meta`` was read from when both are done.
    ``recorded`` MD5/SHA1 are taken instead of hashed (the SHA256 always is);
    ``image_digests`` as in :func:`check_binpkg`.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ipfsbin-check") as pool:
        checking = pool.submit(
            check_binpkg,
            meta,
            compiler=compiler,
            setuid_packages=setuid_packages,
            image_digests=image_digests,
        )
        try:
            digests = hash_file(meta.path, recorded)
        except OSError as exc:
            checking.exception()  # let the checks end before reporting
            raise BinpkgError(
                f"{meta.path}: cannot be read any more ({exc.strerror})", hint=_HINT_CHANGED
            ) from exc
        report = checking.result()
    verify_unchanged(meta)
    return BinpkgInfo.from_checks(meta, digests=digests, report=report)


def verify_unchanged(meta: BinpkgMetadata) -> None:
    """Raise ``BinpkgError`` unless ``meta.path`` is still the file that was read."""
    if meta.identity is not None and FileIdentity.of(meta.path) != meta.identity:
        raise BinpkgError(
            f"{meta.path}: the file changed while it was being read", hint=_HINT_CHANGED
        )


def _is_text_key(key: str) -> bool:
    # environment.bz2, the ebuild and NEEDED.ELF.2 are files, not metadata values.
    return "." not in key


def _text(value: bytes) -> str:
    return " ".join(value.decode("utf-8", "replace").split())


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _restrict_words(restrict: str, use: tuple[str, ...]) -> frozenset[str]:
    """RESTRICT's tokens with USE conditionals evaluated against the package's USE."""
    if not restrict:
        return frozenset()
    try:
        return frozenset(_portage.use_reduce_flat(restrict, use))
    except Exception:  # noqa: BLE001
        # A malformed RESTRICT: count every plain word, never fewer restrictions.
        return frozenset(w for w in restrict.split() if w not in ("(", ")") and "?" not in w)


def _arch_from_environment(environment: bytes | None) -> str:
    """ARCH as the build's saved environment records it (``declare -x ARCH="amd64"``)."""
    if not environment:
        return ""
    try:
        text = bz2.BZ2Decompressor().decompress(environment, max_length=_MAX_ENVIRONMENT)
    except (OSError, ValueError, EOFError):
        return ""
    match = _ARCH_RE.search(text)
    return match.group(1).decode("utf-8", "replace") if match else ""
