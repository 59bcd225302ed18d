"""Manifests: the bytes a build produced, and what Portage needs to use them.

The wire format is specified in ``schema/manifest.md``. A manifest links the
build's descriptor and the binpkg file (a UnixFS file imported with
:data:`UNIXFS_CHUNKER` and the other options listed there), carries the
digests Portage checks, the binpkg's ``Packages`` entry and the build host's
facts. Unknown fields are rejected: a new field means a new ``type`` version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, cast

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, DAG_PB, RAW, SHA2_256
from ipfsbin.codec.dagcbor import Value
from ipfsbin.codec.fields import (
    MAX_INT,
    expect_fields,
    expect_type,
    get_bytes,
    get_cid,
    get_int,
    get_map,
    get_str,
    kind_of,
)
from ipfsbin.errors import SchemaError, TrustError

__all__ = [
    "BINPKG_FORMATS",
    "BUILD_ORIGINS",
    "COMPILER_FAMILIES",
    "MANIFEST_TYPE",
    "MAX_BLOCK_BYTES",
    "PORTAGE_KEYS",
    "PORTAGE_REQUIRED_KEYS",
    "UNIXFS_CHUNKER",
    "BinpkgFormat",
    "BuildCompiler",
    "BuildHost",
    "BinpkgVerifier",
    "Manifest",
    "check_binpkg_link",
    "normalize_portage_value",
    "verify_binpkg_bytes",
]

MANIFEST_TYPE: Final = "ipfsbin/manifest/1"
UNIXFS_CHUNKER: Final = "size-1048576"
"""The fixed chunker every publisher sends to Kubo's ``add`` (see ``schema/manifest.md`` §2)."""
MAX_BLOCK_BYTES: Final = 1024 * 1024
"""Kubo refuses bigger blocks unless forced; our blocks must stay below."""

BinpkgFormat = Literal["gpkg", "xpak"]
BINPKG_FORMATS: Final = ("gpkg", "xpak")
COMPILER_FAMILIES: Final = ("clang", "gcc", "rustc")
"""Families the binpkg reader names; others are accepted if they look like a name."""
_FAMILY = re.compile(r"^[a-z][a-z0-9_+-]{0,31}$")

PORTAGE_REQUIRED_KEYS: Final = frozenset({"CPV", "EAPI", "SLOT"})
PORTAGE_KEYS: Final = PORTAGE_REQUIRED_KEYS | frozenset(
    {
        "BDEPEND",
        "BUILD_ID",
        "BUILD_TIME",
        "CHOST",
        "DEFINED_PHASES",
        "DEPEND",
        "DESC",
        "IDEPEND",
        "IUSE",
        "KEYWORDS",
        "LICENSE",
        "PDEPEND",
        "PROPERTIES",
        "PROVIDES",
        "RDEPEND",
        "REPO",
        "REQUIRES",
        "RESTRICT",
        "USE",
    }
)
_NUMERIC_KEYS: Final = ("BUILD_ID", "BUILD_TIME")
_CPV = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9+_.-]*/[A-Za-z0-9_][A-Za-z0-9+_-]*-[0-9][^\s/]*$")
_FIELDS: Final = frozenset(
    {"type", "descriptor", "binpkg", "format", "size", "sha256", "sha1", "md5", "portage", "build"}
)
_BUILD_FIELDS: Final = frozenset({"chost", "cbuild", "compiler", "origin", "tests"})
BUILD_ORIGINS: Final = ("built", "quickpkg", "fetched")
"""How a binpkg came to be: built from source, repackaged from an installed system, fetched."""
_COMPILER_FIELDS: Final = frozenset({"family", "version"})
_DIGEST_BYTES: Final = {"sha256": 32, "sha1": 20, "md5": 16}


def normalize_portage_value(value: str) -> str:
    """Whitespace runs collapsed to one space, none at the ends (how ``Packages`` stores it)."""
    return " ".join(value.split())


def check_binpkg_link(cid: CID, what: str, *, sha256: bytes | None = None) -> CID:
    """``cid`` if it can be a UnixFS file imported as the schema says; ``SchemaError`` if not.

    A single-chunk file is one ``raw`` block whose digest is the file's
    sha256; when ``sha256`` is given that is checked too.
    """
    get_cid(cid, what)
    if cid.version != 1 or cid.codec not in (RAW, DAG_PB) or cid.hash_code != SHA2_256:
        raise SchemaError(
            f"{what} must be a CIDv1 raw or dag-pb link with a sha2-256 hash, got {cid}",
            hint="add binpkgs with CIDv1 and raw leaves (see schema/manifest.md)",
        )
    if sha256 is not None and cid.codec == RAW and cid.digest != sha256:
        raise SchemaError(
            f"{what} {cid} is a single raw block whose digest is not the file's sha256 "
            f"{sha256.hex()}"
        )
    return cid


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildCompiler:
    """The compiler read from the build output (ELF ``.comment``), e.g. gcc 13.2.1."""

    family: str
    version: str

    def __post_init__(self) -> None:
        if type(self.family) is not str or not _FAMILY.match(self.family):
            raise SchemaError(
                f"compiler family must be a lowercase name such as "
                f"{', '.join(COMPILER_FAMILIES)}, got {self.family!r}"
            )
        _nonempty_word(self.version, "compiler version")

    @classmethod
    def from_dag(cls, value: Value) -> BuildCompiler:
        fields = expect_fields(value, "manifest build.compiler", _COMPILER_FIELDS)
        return cls(
            family=get_str(fields["family"], "compiler family"),
            version=get_str(fields["version"], "compiler version"),
        )

    def to_dag(self) -> dict[str, Value]:
        return {"family": self.family, "version": self.version}


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildHost:
    """What the binpkg says about the host that built it, beyond the descriptor.

    ``origin`` (one of :data:`BUILD_ORIGINS`) and ``tests`` (whether the
    package's test phase ran) are provenance a client policy can act on;
    None means not recorded.
    """

    chost: str
    cbuild: str | None = None
    compiler: BuildCompiler | None = None
    origin: str | None = None
    tests: bool | None = None

    def __post_init__(self) -> None:
        _nonempty_word(self.chost, "build chost")
        if self.cbuild is not None:
            _nonempty_word(self.cbuild, "build cbuild")
        if self.compiler is not None and not isinstance(self.compiler, BuildCompiler):
            raise TypeError(f"compiler must be a BuildCompiler, not {type(self.compiler).__name__}")
        if self.origin is not None and self.origin not in BUILD_ORIGINS:
            raise SchemaError(
                f"build origin must be one of {', '.join(BUILD_ORIGINS)}, got {self.origin!r}"
            )
        if self.tests is not None and type(self.tests) is not bool:
            raise SchemaError(f"build tests must be a boolean, got {kind_of(self.tests)}")

    @classmethod
    def from_dag(cls, value: Value) -> BuildHost:
        fields = expect_fields(value, "manifest build", frozenset({"chost"}), _BUILD_FIELDS)
        cbuild = fields.get("cbuild")
        compiler = fields.get("compiler")
        origin = fields.get("origin")
        tests = fields.get("tests")
        return cls(
            chost=get_str(fields["chost"], "build chost"),
            cbuild=None if cbuild is None else get_str(cbuild, "build cbuild"),
            compiler=None if compiler is None else BuildCompiler.from_dag(compiler),
            origin=None if origin is None else get_str(origin, "build origin"),
            # a non-bool is the constructor's to refuse, for built and decoded facts alike
            tests=tests,
        )

    def to_dag(self) -> dict[str, Value]:
        value: dict[str, Value] = {"chost": self.chost}
        if self.cbuild is not None:
            value["cbuild"] = self.cbuild
        if self.compiler is not None:
            value["compiler"] = self.compiler.to_dag()
        if self.origin is not None:
            value["origin"] = self.origin
        if self.tests is not None:
            value["tests"] = self.tests
        return value


@dataclass(frozen=True, kw_only=True, slots=True)
class Manifest:
    """One binpkg: its file (``binpkg``), digests, ``Packages`` entry and build facts.

    ``portage`` is read-only once built (a sorted mapping proxy). Build one
    from Portage data with :meth:`create`, which normalizes and drops empty
    values; the constructor itself only accepts normal form.
    """

    descriptor: CID
    binpkg: CID
    format: BinpkgFormat
    size: int
    sha256: bytes
    sha1: bytes
    md5: bytes
    portage: Mapping[str, str] = field(repr=False)
    build: BuildHost

    def __post_init__(self) -> None:
        if not isinstance(self.descriptor, CID) or self.descriptor.codec != DAG_CBOR:
            raise SchemaError(
                f"manifest descriptor must be a dag-cbor link, got {kind_of(self.descriptor)}"
            )
        if self.format not in BINPKG_FORMATS:
            raise SchemaError(f"manifest format must be gpkg or xpak, got {self.format!r}")
        if type(self.size) is not int or not 1 <= self.size <= MAX_INT:
            raise SchemaError(f"manifest size must be a positive integer, got {self.size!r}")
        for name, length in _DIGEST_BYTES.items():
            digest = getattr(self, name)
            if type(digest) is not bytes or len(digest) != length:
                got = len(digest) if isinstance(digest, bytes) else kind_of(digest)
                raise SchemaError(f"manifest {name} must be {length} bytes, got {got}")
        check_binpkg_link(self.binpkg, "manifest binpkg", sha256=self.sha256)
        if not isinstance(self.build, BuildHost):
            raise TypeError(f"build must be BuildHost, not {type(self.build).__name__}")
        object.__setattr__(self, "portage", _check_portage(self.portage))

    @classmethod
    def create(
        cls,
        *,
        descriptor: CID,
        binpkg: CID,
        format: BinpkgFormat,
        size: int,
        sha256: bytes,
        sha1: bytes,
        md5: bytes,
        portage: Mapping[str, str],
        build: BuildHost,
    ) -> Manifest:
        """A manifest from raw Portage values: whitespace normalized, empty values left out.

        Keys outside :data:`PORTAGE_KEYS` are dropped here (Portage records
        many more); the constructor refuses them.
        """
        entry = {
            key: normalize_portage_value(value)
            for key, value in portage.items()
            if key in PORTAGE_KEYS and normalize_portage_value(value)
        }
        return cls(
            descriptor=descriptor,
            binpkg=binpkg,
            format=format,
            size=size,
            sha256=sha256,
            sha1=sha1,
            md5=md5,
            portage=entry,
            build=build,
        )

    @property
    def cpv(self) -> str:
        return self.portage["CPV"]

    @property
    def restrict(self) -> frozenset[str]:
        return frozenset(self.portage.get("RESTRICT", "").split())

    @classmethod
    def from_dag(cls, value: Value) -> Manifest:
        expect_type(value, "manifest", MANIFEST_TYPE)
        fields = expect_fields(value, "manifest", _FIELDS)
        portage = get_map(fields["portage"], "manifest portage")
        fmt = get_str(fields["format"], "manifest format")
        if fmt not in BINPKG_FORMATS:
            raise SchemaError(f"manifest format must be gpkg or xpak, got {fmt!r}")
        return cls(
            descriptor=get_cid(fields["descriptor"], "manifest descriptor"),
            binpkg=get_cid(fields["binpkg"], "manifest binpkg"),
            format="gpkg" if fmt == "gpkg" else "xpak",
            # the lower bound is the constructor's, for built and decoded manifests alike
            size=get_int(fields["size"], "manifest size"),
            sha256=get_bytes(fields["sha256"], "manifest sha256"),
            sha1=get_bytes(fields["sha1"], "manifest sha1"),
            md5=get_bytes(fields["md5"], "manifest md5"),
            portage=_str_values(portage, "manifest portage"),
            build=BuildHost.from_dag(fields["build"]),
        )

    def to_dag(self) -> dict[str, Value]:
        return {
            "type": MANIFEST_TYPE,
            "descriptor": self.descriptor,
            "binpkg": self.binpkg,
            "format": self.format,
            "size": self.size,
            "sha256": self.sha256,
            "sha1": self.sha1,
            "md5": self.md5,
            "portage": dict(self.portage),
            "build": self.build.to_dag(),
        }

    def __getstate__(self) -> list[object]:
        # pickle (the catalog's decoding workers) cannot write the read-only portage proxy
        values: list[object] = [getattr(self, name) for name in _SLOTS]
        values[_PORTAGE_AT] = dict(self.portage)
        return values

    def __setstate__(self, values: list[object]) -> None:
        values[_PORTAGE_AT] = MappingProxyType(cast(dict[str, str], values[_PORTAGE_AT]))
        for name, value in zip(_SLOTS, values, strict=True):
            object.__setattr__(self, name, value)

    def to_block(self) -> tuple[CID, bytes]:
        """The canonical DAG-CBOR block and its CID."""
        cid, data = dagcbor.encode_block(self.to_dag())
        if len(data) > MAX_BLOCK_BYTES:
            raise SchemaError(
                f"manifest of {self.cpv} encodes to {len(data)} bytes, "
                f"more than the {MAX_BLOCK_BYTES} a block may hold"
            )
        return cid, data

    @classmethod
    def from_block(cls, cid: CID, data: bytes) -> Manifest:
        """Decode a block after checking it hashes to ``cid``."""
        return cls.from_dag(dagcbor.decode_block(cid, data))

    @classmethod
    def from_checked_block(cls, cid: CID, data: bytes) -> Manifest:
        """:meth:`from_block` for bytes an earlier strict decode proved canonical.

        The hash and every model check still apply; only the canonical-form
        proof is skipped (``dagcbor.decode_checked_block``).
        """
        return cls.from_dag(dagcbor.decode_checked_block(cid, data))


_SLOTS: Final = tuple(f.name for f in dataclasses.fields(Manifest))
_PORTAGE_AT: Final = _SLOTS.index("portage")


class BinpkgVerifier:
    """Checks a binpkg's bytes against its manifest as they stream past.

    Feed every chunk to :meth:`update` (it raises as soon as there are more
    bytes than the manifest's size), then call :meth:`finish`: the size, the
    sha256 and (unless ``portage_digests`` is false) the MD5/SHA-1 Portage
    checks must all be the manifest's. The shim leaves MD5/SHA-1 to Portage,
    which checks them itself on the complete file; sha256 is what the signed
    manifest identifies the bytes by, and MD5 alone would halve the shim's
    throughput.
    """

    def __init__(
        self, manifest: Manifest, manifest_cid: CID, *, portage_digests: bool = True
    ) -> None:
        self.manifest = manifest
        self.manifest_cid = manifest_cid
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._others = (
            (
                hashlib.sha1(),  # noqa: S324 - Portage's own check, not a trust anchor
                hashlib.md5(),  # noqa: S324 - likewise
            )
            if portage_digests
            else ()
        )

    def update(self, chunk: bytes) -> None:
        if self.size + len(chunk) > self.manifest.size:
            self.size += len(chunk)
            self._refuse()
        self.size += len(chunk)
        self._sha256.update(chunk)
        for digest in self._others:
            digest.update(chunk)

    def finish(self) -> None:
        got = (self._sha256.digest(), *(d.digest() for d in self._others))
        wanted = (self.manifest.sha256, self.manifest.sha1, self.manifest.md5)[: len(got)]
        if self.size != self.manifest.size or got != wanted:
            self._refuse()

    def _refuse(self) -> None:
        manifest = self.manifest
        seen = (
            f"more than {manifest.size} bytes"
            if self.size > manifest.size
            else f"{self.size} bytes"
        ) + f" with sha256 {self._sha256.hexdigest()}"
        raise TrustError(
            f"the bytes behind binpkg {manifest.binpkg} do not match manifest "
            f"{self.manifest_cid} of {manifest.cpv}: found {seen}, the manifest says "
            f"{manifest.size} bytes with sha256 {manifest.sha256.hex()}",
            hint="the manifest does not describe its file; do not accept it",
        )


def verify_binpkg_bytes(manifest: Manifest, manifest_cid: CID, chunks: Iterable[bytes]) -> None:
    """``TrustError`` unless ``chunks`` are exactly the bytes ``manifest`` describes."""
    verifier = BinpkgVerifier(manifest, manifest_cid)
    for chunk in chunks:
        verifier.update(chunk)
    verifier.finish()


def _str_values(value: dict[str, Value], what: str) -> dict[str, str]:
    """``value`` (a decoded map: its keys are strings) when every value is a string too."""
    for item in value.values():
        if type(item) is not str:
            for key, each in value.items():
                get_str(each, f"{what} {key}")
    return value


def _check_portage(portage: Mapping[str, str]) -> Mapping[str, str]:
    if type(portage) is not dict and not isinstance(portage, Mapping):
        raise SchemaError(f"manifest portage must be a map, got {kind_of(portage)}")
    keys = portage.keys()
    unknown = sorted(keys - PORTAGE_KEYS)
    if unknown:
        raise SchemaError(
            f"manifest portage has unknown key(s) {', '.join(unknown)}",
            hint="allowed keys are listed in schema/manifest.md §1.2",
        )
    missing = sorted(PORTAGE_REQUIRED_KEYS - keys)
    if missing:
        raise SchemaError(f"manifest portage lacks the key(s) {', '.join(missing)}")
    for key, value in portage.items():
        if type(value) is not str:
            raise SchemaError(f"manifest portage {key} must be a string, got {kind_of(value)}")
        if not value or normalize_portage_value(value) != value:
            raise SchemaError(
                f"manifest portage {key} must be a non-empty string with single spaces "
                f"and none at the ends, got {value[:80]!r}"
            )
    for key in _NUMERIC_KEYS:
        if key in portage and not (portage[key].isascii() and portage[key].isdigit()):
            raise SchemaError(
                f"manifest portage {key} must be decimal digits, got {portage[key]!r}"
            )
    if not _CPV.match(portage["CPV"]):
        raise SchemaError(
            f"manifest portage CPV must look like category/name-version, got {portage['CPV']!r}"
        )
    return MappingProxyType(dict(sorted(portage.items())))


def _nonempty_word(value: object, what: str) -> None:
    if type(value) is not str or not value or value.split() != [value]:
        raise SchemaError(f"{what} must be a non-empty string without spaces, got {value!r}")
