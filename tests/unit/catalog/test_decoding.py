"""Builds decoded by worker processes: the same catalog, and a bad block refused as before."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from ipfsbin.catalog import BuildCache, CatalogBuilder, decoding
from ipfsbin.catalog.decoding import Decoder, descriptor_link
from ipfsbin.catalog.kept import read_kept, write_kept
from ipfsbin.codec import dagcbor
from ipfsbin.config import ClientPolicy
from ipfsbin.manifest import Manifest
from ipfsbin.serve.packages import render_body
from tests.unit.catalog.catalog_helpers import NOW, Index, host_info
from tests.unit.catalog.test_kept import _index

NAME = "k51test"


def _build(index: Index, cache: BuildCache) -> CatalogBuilder:
    builder = CatalogBuilder(cache, render=render_body)
    builder.build([index.head()], host=host_info(), policy=ClientPolicy(), now=NOW)
    return builder


def _manifest_block(index: Index, name: str) -> bytes:
    return index.store.get(index.manifests[name])


def test_workers_give_the_catalog_the_building_thread_gives() -> None:
    index = _index()
    alone = _build(index, BuildCache(index.store, parallel_from=0))
    workers = _build(index, BuildCache(index.store, parallel_from=1))
    assert workers.bodies[NAME] == alone.bodies[NAME]
    assert {p: o.build for p, o in workers.paths[NAME].items()} == {
        p: o.build for p, o in alone.paths[NAME].items()
    }


def test_a_block_that_does_not_hash_to_its_cid_is_refused_with_workers_too() -> None:
    index = _index()
    bad = index.manifests["p3"]
    # another manifest's bytes under p3's CID: decodes, but not to that CID
    index.store._blocks[bad] = _manifest_block(index, "p4")
    alone = _build(index, BuildCache(index.store, parallel_from=0))
    workers = _build(index, BuildCache(index.store, parallel_from=1))
    assert workers.bodies[NAME] == alone.bodies[NAME]
    listed = {o.build.manifest_cid for o in workers.paths[NAME].values()}
    assert bad not in listed and index.manifests["p4"] in listed


def test_a_worker_hands_back_nothing_for_a_pair_it_cannot_check() -> None:
    index = _index()
    good, other = index.manifests["p1"], index.manifests["p2"]
    manifest = Manifest.from_block(good, _manifest_block(index, "p1"))
    descriptor = index.store.get(manifest.descriptor)
    pairs = [
        (good, _manifest_block(index, "p1"), manifest.descriptor, descriptor, False),
        # p1's bytes under p2's CID: they do not hash to it
        (other, _manifest_block(index, "p1"), manifest.descriptor, descriptor, False),
        # a descriptor other than the one the manifest names
        (good, _manifest_block(index, "p1"), other, descriptor, False),
    ]  # fmt: skip
    with Decoder(pairs[:1], workers=1) as decoder:
        found = decoder.take(good)
    assert found is not None and found[0] == manifest and found[1] == pairs[0][1]
    for pair in pairs[1:]:
        with Decoder([pair], workers=1) as decoder:
            assert decoder.take(pair[0]) is None
    assert descriptor_link(_manifest_block(index, "p1")) == manifest.descriptor
    assert descriptor_link(dagcbor.encode({"descriptor": "not a link"})) is None
    # a bigfloat with a huge exponent: never decoded here
    assert (
        descriptor_link(bytes.fromhex("a16a64657363726970746f72c5821b7fffffffffffffff01")) is None
    )


def test_kept_builds_decoded_by_workers_list_the_same_bytes(tmp_path: Path) -> None:
    index = _index()
    first = _build(index, BuildCache(index.store, parallel_from=0))
    path = tmp_path / "catalog-builds"
    write_kept(path, first.cache.verified())
    cache = BuildCache(index.store, kept=read_kept(path), parallel_from=1)
    again = _build(index, cache)
    assert again.bodies[NAME] == first.bodies[NAME]
    assert cache.from_kept == len(index.entries)


def test_workers_forked_from_a_thread_while_another_one_logs() -> None:
    """As in ``serve``: the publisher's thread builds while other threads run."""
    index = _index()
    expected = _build(index, BuildCache(index.store, parallel_from=0)).bodies[NAME]
    stop = threading.Event()
    log = logging.getLogger("ipfsbin.test.decoding")

    def chatter() -> None:
        while not stop.is_set():
            log.debug("busy")

    def build() -> None:
        found.append(_build(index, BuildCache(index.store, parallel_from=1)).bodies[NAME])

    found: list[bytes] = []
    other = threading.Thread(target=chatter)
    other.start()
    try:
        for _ in range(3):
            building = threading.Thread(target=build)
            building.start()
            building.join(timeout=60)
            assert not building.is_alive()
    finally:
        stop.set()
        other.join()
    assert found == [expected] * 3


def _stuck(chunk: Sequence[object]) -> list[None]:
    """A worker that never answers (in the worker process: the test's forked copy)."""
    time.sleep(3600)
    return [None] * len(chunk)


def test_a_stuck_worker_does_not_stop_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    index = _index()
    expected = _build(index, BuildCache(index.store, parallel_from=0)).bodies[NAME]
    monkeypatch.setattr(decoding, "_decode", _stuck)
    monkeypatch.setattr(decoding, "CHUNK_WAIT_S", 0.5)
    started = time.monotonic()
    cache = BuildCache(index.store, parallel_from=1)
    assert _build(index, cache).bodies[NAME] == expected
    # one wait for the stuck chunk, then the building thread read every pair itself
    # and the worker was stopped rather than waited for
    assert time.monotonic() - started < 20
