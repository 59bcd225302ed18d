"""Index keys and entries: layout, parsing back, prefix scans, strict from_dag."""

from __future__ import annotations

import pytest

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.descriptor.cpv import split_cpv
from ipfsbin.errors import SchemaError
from ipfsbin.index import (
    IndexEntry,
    ProllyTree,
    index_key,
    package_prefix,
    parse_index_key,
    platform_prefix,
    short_id,
)
from ipfsbin.store.memory import MemoryBlockStore


def block_cid(value: object) -> CID:
    return dagcbor.encode_block(value)[0]


PLATFORM_A = block_cid({"platform": "a"})
PLATFORM_B = block_cid({"platform": "b"})


@pytest.mark.parametrize(
    ("cpv", "parts"),
    [
        ("dev-libs/openssl-3.0.13-r1", ("dev-libs", "openssl", "3.0.13-r1")),
        ("app-misc/hello-1", ("app-misc", "hello", "1")),
        ("x11-libs/gtk+-3.24.41", ("x11-libs", "gtk+", "3.24.41")),
        ("dev-lang/python-3.12.3_p1-r2", ("dev-lang", "python", "3.12.3_p1-r2")),
        ("media-libs/foo-bar2-1.0_rc3", ("media-libs", "foo-bar2", "1.0_rc3")),
        ("sys-libs/glibc-2.39a", ("sys-libs", "glibc", "2.39a")),
    ],
)
def test_split_cpv(cpv: str, parts: tuple[str, str, str]) -> None:
    assert split_cpv(cpv) == parts
    key = index_key(PLATFORM_A, cpv, block_cid(cpv))
    parsed = parse_index_key(key)
    assert parsed.cpv == cpv
    assert str(parsed) == key
    assert (parsed.category, parsed.package, parsed.version) == parts


@pytest.mark.parametrize("cpv", ["openssl-3.0", "dev-libs/openssl", "dev-libs/-1", "a/b/c-1"])
def test_bad_cpv(cpv: str) -> None:
    with pytest.raises(ValueError, match="category/package-version"):
        split_cpv(cpv)
    with pytest.raises(ValueError, match="ends like a version"):
        split_cpv("media-libs/foo-bar-2-1.0")


def test_short_id_is_26_base32_chars_of_the_digest() -> None:
    ident = short_id(PLATFORM_A)
    assert len(ident) == 26 and ident == ident.lower()
    assert short_id(PLATFORM_A) != short_id(PLATFORM_B)
    with pytest.raises(ValueError, match="not a dag-cbor block CID"):
        short_id(cid_for(RAW, b"x"))


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("a/b/c", "has 3 parts, expected 5"),
        ("UPPER4ABCDEFGHIJKLMNOPQRST/cat/pkg/1/" + "a" * 26, "platform_id"),
        ("a" * 26 + "/cat/pkg/1.x/" + "a" * 26, "not a valid Portage version"),
        ("a" * 26 + "/cat/pkg-1/1/" + "a" * 26, "not a valid package name"),
        ("a" * 26 + "/cat/pkg/1/" + "a" * 25, "descriptor_digest"),
    ],
)
def test_parse_refuses_what_is_not_a_key(key: str, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        parse_index_key(key)


def test_prefix_scans_give_platform_and_package_builds() -> None:
    cpvs = ["dev-libs/foo-1", "dev-libs/foo-2", "dev-libs/foo-bar-1", "dev-libs/fo-1", "app/x-1"]
    entries = {}
    for platform in (PLATFORM_A, PLATFORM_B):
        for cpv in cpvs:
            for flavour in range(3):
                descriptor = block_cid({"cpv": cpv, "f": flavour, "p": str(platform)})
                manifest = block_cid({"m": str(descriptor)})
                entries[index_key(platform, cpv, descriptor)] = IndexEntry.new(manifest).to_dag()
    tree = ProllyTree(MemoryBlockStore())
    root = tree.build(sorted(entries.items()))
    mine = [k for k, _ in tree.scan(root, platform_prefix(PLATFORM_A))]
    assert len(mine) == 15 and all(
        parse_index_key(k).platform_id == short_id(PLATFORM_A) for k in mine
    )
    foo = [
        parse_index_key(k).cpv
        for k, _ in tree.scan(root, package_prefix(PLATFORM_A, "dev-libs/foo"))
    ]
    assert sorted(foo) == ["dev-libs/foo-1"] * 3 + ["dev-libs/foo-2"] * 3
    with pytest.raises(ValueError, match="is not category/package"):
        package_prefix(PLATFORM_A, "foo")


MANIFEST = block_cid({"manifest": 1})
ATTS = [block_cid({"att": n}) for n in range(4)]


def test_entry_round_trip_and_canonical_order() -> None:
    entry = IndexEntry.new(MANIFEST, reversed(ATTS))
    assert list(entry.attestations) == sorted(ATTS)
    assert IndexEntry.from_dag(dagcbor.decode(dagcbor.encode(entry.to_dag()))) == entry
    yanked = entry.yanked("bad -O3 build")
    assert yanked.to_dag()["reason"] == "bad -O3 build" and yanked.state == "yanked"
    assert IndexEntry.from_dag(yanked.to_dag()) == yanked
    assert "reason" not in entry.to_dag()


def test_entry_constructor_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="more than once"):
        IndexEntry.new(MANIFEST, [ATTS[0], ATTS[0]])
    with pytest.raises(ValueError, match="needs a reason"):
        IndexEntry.new(MANIFEST, state="yanked")
    with pytest.raises(ValueError, match="only a yanked entry"):
        IndexEntry.new(MANIFEST, reason="why")
    with pytest.raises(ValueError, match="must be a dag-cbor block"):
        IndexEntry.new(cid_for(RAW, b"x"))
    with pytest.raises(TypeError, match="manifest must be a CID"):
        IndexEntry.new("bafy")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([], "is a map"),
        ({"manifest": MANIFEST, "attestations": []}, "lacks fields"),
        ({"manifest": MANIFEST, "attestations": [], "state": "ok", "x": 1}, "unknown fields"),
        ({"manifest": cid_for(RAW, b"x"), "attestations": [], "state": "ok"}, "dag-cbor block"),
        ({"manifest": MANIFEST, "attestations": [ATTS[0], ATTS[0]], "state": "ok"}, "no repeats"),
        ({"manifest": MANIFEST, "attestations": ["x"], "state": "ok"}, "list of dag-cbor links"),
        ({"manifest": MANIFEST, "attestations": [], "state": "ok", "reason": None}, "is null"),
        ({"manifest": MANIFEST, "attestations": [], "state": "ok", "reason": "r"}, "only a yanked"),
        ({"manifest": MANIFEST, "attestations": [], "state": "yanked", "reason": 3}, "a string"),
    ],
)
def test_from_dag_refuses(value: object, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        IndexEntry.from_dag(value)
