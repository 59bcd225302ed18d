"""Index keys: ``platform-id/category/package/version/descriptor-digest``.

Keys sort so that one platform's builds, and one package's builds on it, are
contiguous: "all builds for my platform" and "all builds of this package on my
platform" are prefix scans (:func:`platform_prefix`, :func:`package_prefix`).

``platform-id`` and ``descriptor-digest`` are short, fixed-width text forms of
the Platform and Descriptor block CIDs (see :func:`short_id`). They locate an
entry; they do not replace the full links, which the entry's manifest carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ipfsbin.codec.cid import CID, DAG_CBOR, SHA2_256
from ipfsbin.descriptor.cpv import is_category, is_package, is_version, split_cpv
from ipfsbin.errors import SchemaError

__all__ = [
    "SHORT_ID_LENGTH",
    "IndexKey",
    "descriptor_digest",
    "index_key",
    "package_prefix",
    "parse_index_key",
    "platform_id",
    "platform_prefix",
    "short_id",
]

SHORT_ID_LENGTH: Final = 26
_SHORT_ID_BYTES: Final = 16
_SHORT_ID: Final = re.compile(r"[a-z2-7]{26}")
_BASE32: Final = "abcdefghijklmnopqrstuvwxyz234567"
_PAIRS: Final = tuple(a + b for a in _BASE32 for b in _BASE32)
_SHIFTS: Final = tuple(range(120, -1, -10))


def short_id(cid: CID) -> str:
    """The first 16 bytes of a dag-cbor/sha2-256 CID's digest in lowercase base32 (26 chars)."""
    if cid.codec != DAG_CBOR or cid.hash_code != SHA2_256:
        raise ValueError(f"{cid} is not a dag-cbor block CID with a sha2-256 hash")
    # 128 bits and two zero bits of padding: 13 groups of ten bits, two characters each
    # (a build's key is checked against its descriptor once per entry: 10^5 per first build)
    bits = int.from_bytes(cid.digest[:_SHORT_ID_BYTES], "big") << 2
    return "".join([_PAIRS[(bits >> shift) & 0x3FF] for shift in _SHIFTS])


def platform_id(platform_cid: CID) -> str:
    return short_id(platform_cid)


def descriptor_digest(descriptor_cid: CID) -> str:
    return short_id(descriptor_cid)


@dataclass(frozen=True, kw_only=True)
class IndexKey:
    """The parts of an index key."""

    platform_id: str
    category: str
    package: str
    version: str
    descriptor_digest: str

    def __post_init__(self) -> None:
        for name in ("platform_id", "descriptor_digest"):
            value = getattr(self, name)
            if _SHORT_ID.fullmatch(value) is None:
                raise SchemaError(
                    f"{name} {value!r} is not {SHORT_ID_LENGTH} lowercase base32 characters"
                )
        if not is_category(self.category):
            raise SchemaError(f"category {self.category!r} is not a valid category name")
        if not is_package(self.package):
            raise SchemaError(f"package {self.package!r} is not a valid package name")
        if not is_version(self.version):
            raise SchemaError(f"version {self.version!r} is not a valid Portage version")

    @property
    def cpv(self) -> str:
        return f"{self.category}/{self.package}-{self.version}"

    def __str__(self) -> str:
        return "/".join(
            (self.platform_id, self.category, self.package, self.version, self.descriptor_digest)
        )


def index_key(platform_cid: CID, cpv: str, descriptor_cid: CID) -> str:
    """The key of the build of ``cpv`` described by ``descriptor_cid`` on ``platform_cid``."""
    category, package, version = split_cpv(cpv)
    return str(
        IndexKey(
            platform_id=platform_id(platform_cid),
            category=category,
            package=package,
            version=version,
            descriptor_digest=descriptor_digest(descriptor_cid),
        )
    )


def parse_index_key(key: str) -> IndexKey:
    """Split a key back into its parts; ``SchemaError`` if it is not an index key."""
    parts = key.split("/")
    if len(parts) != 5:
        raise SchemaError(
            f"index key {key!r} has {len(parts)} parts, expected 5 "
            "(platform-id/category/package/version/descriptor-digest)"
        )
    return IndexKey(
        platform_id=parts[0],
        category=parts[1],
        package=parts[2],
        version=parts[3],
        descriptor_digest=parts[4],
    )


def platform_prefix(platform_cid: CID) -> str:
    """Scan prefix of every build for one platform."""
    return platform_id(platform_cid) + "/"


def package_prefix(platform_cid: CID, category_package: str) -> str:
    """Scan prefix of every build of ``"category/package"`` for one platform."""
    category, sep, package = category_package.partition("/")
    if not sep or not is_category(category) or not is_package(package):
        raise ValueError(f"{category_package!r} is not category/package")
    return f"{platform_id(platform_cid)}/{category}/{package}/"
