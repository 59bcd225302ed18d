"""Verified builds kept across restarts: the same Packages, and nothing taken from a bad file."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest

from ipfsbin.catalog import BuildCache, CatalogBuilder
from ipfsbin.catalog.kept import MAGIC, read_kept, write_kept
from ipfsbin.codec.cid import CID
from ipfsbin.config import ClientPolicy
from ipfsbin.index.keys import index_key
from ipfsbin.serve.packages import render_body
from tests.unit.catalog.catalog_helpers import NOW, Index, host_info
from tests.unit.maintainer.maintainer_helpers import PLATFORM
from tests.unit.writer_kills import kill_writer_at_moments

NAME = "k51test"


def _index() -> Index:
    index = Index()
    for i in range(12):
        index.add(f"p{i}", f"app-misc/p{i}-1")
    index.add("nossl", "app-misc/p0-1", use=(), iuse=("ssl",))
    return index


def _build(index: Index, cache: BuildCache) -> tuple[CatalogBuilder, bytes]:
    builder = CatalogBuilder(cache, render=render_body)
    builder.build([index.head()], host=host_info(), policy=ClientPolicy(), now=NOW)
    return builder, builder.bodies[NAME]


def _drop_blocks(index: Index, cids: list[CID]) -> None:
    for cid in cids:
        del index.store._blocks[cid]


def _written(tmp_path: Path) -> tuple[Index, bytes, Path]:
    index = _index()
    builder, body = _build(index, BuildCache(index.store))
    path = tmp_path / "catalog-builds"
    assert write_kept(path, builder.cache.verified()) == 13
    return index, body, path


def test_a_restart_lists_the_same_bytes_from_the_kept_blocks_alone(tmp_path: Path) -> None:
    index, body, path = _written(tmp_path)
    kept = read_kept(path)
    assert len(kept) == 13
    # the manifests and descriptors are gone from the store: only the file holds them
    cache = BuildCache(index.store, kept=kept)
    manifests = [e.manifest for e in index.entries.values()]
    _drop_blocks(index, manifests + [_descriptor_cid(index, m) for m in manifests])
    _, again = _build(index, cache)
    assert again == body
    assert cache.loaded == 13
    assert len(cache.kept) == 0  # every record handed out once, then let go


def _rewrite(path: Path, *, version: int | None = None, rules: bytes | None = None) -> None:
    data = bytearray(path.read_bytes())
    at = len(MAGIC)
    if version is not None:
        struct.pack_into(">I", data, at, version)
    if rules is not None:
        data[at + 4 : at + 36] = rules
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    ["truncated", "truncated-header", "flipped", "old-version", "other-rules", "not-ours", "empty"],
)
def test_a_damaged_or_foreign_file_is_refused_whole_and_the_blocks_read_again(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    index, body, path = _written(tmp_path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) - 7])
    elif damage == "truncated-header":
        path.write_bytes(data[: len(MAGIC) + 10])
    elif damage == "flipped":
        middle = len(data) - (len(data) - len(MAGIC) - 76) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :])
    elif damage == "old-version":
        _rewrite(path, version=0)
    elif damage == "other-rules":
        _rewrite(path, rules=bytes(32))
    elif damage == "not-ours":
        path.write_bytes(b"{}" + data)
    else:
        path.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="ipfsbin.catalog"):
        kept = read_kept(path)
    assert len(kept) == 0
    assert "kept builds refused" in caplog.text
    cache = BuildCache(index.store, kept=kept)
    _, again = _build(index, cache)
    assert again == body


def test_a_missing_file_is_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ipfsbin.catalog"):
        assert len(read_kept(tmp_path / "none")) == 0
    assert caplog.text == ""


def test_a_record_whose_bytes_are_not_its_blocks_is_not_used(tmp_path: Path) -> None:
    index = _index()
    builder, body = _build(index, BuildCache(index.store))
    # each record holds another build's valid blocks: the hash check must refuse them
    records = list(builder.cache.verified())
    rows = [(cid, *records[(at + 1) % len(records)][1:]) for at, (cid, _, _) in enumerate(records)]
    path = tmp_path / "catalog-builds"
    write_kept(path, rows)  # a whole file around them: only the records are wrong
    kept = read_kept(path)
    assert len(kept) == 13
    cache = BuildCache(index.store, kept=kept)
    _, again = _build(index, cache)
    assert again == body
    assert cache.from_kept == 0  # every manifest and descriptor read from the store instead


def test_a_refused_manifest_is_not_written_nor_accepted_from_the_file(tmp_path: Path) -> None:
    index = _index()
    # an entry kept under a key that names another package: its build is refused
    index.add("liar", "app-misc/liar-1")
    entry = index.entries.pop(next(k for k in index.entries if "liar" in k))
    wrong = index_key(PLATFORM.cid, "app-misc/zzz-1", _descriptor_cid(index, entry.manifest))
    index.entries[wrong] = entry
    builder, body = _build(index, BuildCache(index.store))
    assert entry.manifest not in {cid for cid, _, _ in builder.cache.verified()}
    assert b"app-misc/zzz-1" not in body and b"app-misc/liar-1" not in body
    # even a file that holds its blocks does not make it acceptable
    rows = [*builder.cache.verified(), (entry.manifest, *_blocks_of(index, entry.manifest))]
    path = tmp_path / "catalog-builds"
    write_kept(path, rows)
    _, again = _build(index, BuildCache(index.store, kept=read_kept(path)))
    assert again == body


def _descriptor_cid(index: Index, manifest: CID) -> CID:
    from ipfsbin.manifest import Manifest

    return Manifest.from_block(manifest, index.store.get(manifest)).descriptor


def _blocks_of(index: Index, manifest: CID) -> tuple[bytes, bytes]:
    return index.store.get(manifest), index.store.get(_descriptor_cid(index, manifest))


_WRITER = """
import sys
from pathlib import Path
from ipfsbin.catalog.kept import write_kept
from ipfsbin.codec.cid import cid_for, DAG_CBOR
path = Path(sys.argv[1])
rows = {n: [(cid_for(DAG_CBOR, b"%d-%d" % (n, i)), bytes(2000), bytes(1000)) for i in range(n)]
        for n in (3000, 5000)}
print("ready", flush=True)
while True:
    for n in (3000, 5000):
        write_kept(path, rows[n])
"""


def test_kill_9_while_writing_leaves_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog-builds"

    def whole() -> None:
        assert len(read_kept(path)) in (3000, 5000)

    kill_writer_at_moments(_WRITER, path, whole)
    # the next write replaces whatever a killed one left beside it
    write_kept(path, [])
    assert len(read_kept(path)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog-builds"]


@pytest.mark.parametrize("cut", [1, 6, 10, 40])
def test_a_record_running_past_the_end_is_refused_even_under_a_valid_digest(
    tmp_path: Path, cut: int
) -> None:
    """Lengths that do not add up are refused, not read short (the digest alone would pass)."""
    import hashlib

    _, _, path = _written(tmp_path)
    data = path.read_bytes()
    start = len(MAGIC) + struct.calcsize(">I32sQ32s")
    payload = data[start:-cut]
    head = data[: start - 40] + struct.pack(">Q", len(payload)) + hashlib.sha256(payload).digest()
    path.write_bytes(head + payload)
    assert len(read_kept(path)) == 0
