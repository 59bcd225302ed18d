"""The shim's repo path against real Kubo nodes and a real shim process: every block checked.

Two nodes hold the same files; the shim reads the local node's block files
(``IPFSBIN_REPO``) and falls back to its gateway, which fetches what the
local repo lacks from the peer. The block files are altered in place (Kubo
does not hash blocks again when it reads them), as damage or an attacker
with access to the repo would, and put back after each test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ipfsbin.codec.cid import CID, DAG_PB, RAW
from ipfsbin.codec.unixfs import decode_file_node
from ipfsbin.kubo.flatfs import FlatfsBlocks
from ipfsbin.kubo.node import ManagedNode
from tests.integration.offer_shim import SUBSCRIPTION
from tests.integration.serve_helpers import free_port

pytestmark = pytest.mark.integration

MIB = 1 << 20
BIG = 6 * MIB + 12345  # a dag-pb root over 7 raw leaves
SMALL = 300_000  # one raw block


@dataclass
class Files:
    local: ManagedNode
    blocks: FlatfsBlocks
    work: Path
    data: dict[str, bytes]
    cids: dict[str, CID]

    def leaves(self, name: str) -> list[CID]:
        root = self.cids[name]
        if root.codec == RAW:
            return [root]
        return list(decode_file_node(root, self.blocks.read(root)).children)

    def block_file(self, cid: CID) -> Path:
        return Path(self.blocks.path(cid))

    @contextmanager
    def altered(self, cid: CID, data: bytes) -> Iterator[None]:
        """The block file of ``cid`` holding ``data`` while inside; its own bytes after."""
        path = self.block_file(cid)
        good = path.read_bytes()
        path.write_bytes(data)
        try:
            yield
        finally:
            path.write_bytes(good)


@pytest.fixture(scope="module")
def files(kubo_nodes: Any, tmp_path_factory: pytest.TempPathFactory) -> Files:
    local, peer = kubo_nodes(2)
    work = tmp_path_factory.mktemp("serve-blocks")
    data = {"big": os.urandom(BIG), "small": os.urandom(SMALL)}
    cids = {}
    for name, content in data.items():
        (work / name).write_bytes(content)
        for node in (peer, local):
            with node.client() as client:
                # unpinned on the local node, so a block can be removed from it
                cids[name] = client.add(
                    work / name, name=name, chunker="size-1048576", pin=node is peer
                ).cid
    with local.client() as client:
        client.swarm_connect(peer.swarm_addrs())
    blocks = FlatfsBlocks.open(local.repo_path)
    assert blocks is not None
    assert cids["big"].codec == DAG_PB and cids["small"].codec == RAW
    return Files(local=local, blocks=blocks, work=work, data=data, cids=cids)


@dataclass
class Shim:
    port: int
    log: Path

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{SUBSCRIPTION}/app-misc/{name}/{name}-1.gpkg.tar"

    def get(self, name: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, int]:
        """Status, the bytes received, and the Content-Length; a body cut short is kept."""
        got = b""
        with httpx.stream("GET", self.url(name), headers=headers, timeout=60) as answer:
            length = int(answer.headers["content-length"])
            try:
                for chunk in answer.iter_bytes():
                    got += chunk
            except httpx.HTTPError:
                assert len(got) < length
            return answer.status_code, got, length

    def text(self) -> str:
        return self.log.read_text()


@contextmanager
def shim(files: Files, *, repo: bool = True) -> Iterator[Shim]:
    spec = [
        {"cid": str(files.cids[name]), "data_file": str(files.work / name),
         "path": f"app-misc/{name}/{name}-1.gpkg.tar"}
        for name in files.data
    ]  # fmt: skip
    spec_path = files.work / "spec.json"
    spec_path.write_text(json.dumps(spec))
    port = free_port()
    log = files.work / f"shim-{port}.log"
    env = {**os.environ, "IPFSBIN_API": files.local.api_multiaddr,
           "IPFSBIN_GATEWAY": files.local.gateway_url}  # fmt: skip
    if repo:
        env["IPFSBIN_REPO"] = str(files.local.repo_path)
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "tests.integration.offer_shim", str(spec_path), str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    try:
        served = Shim(port, log)
        for _ in range(200):
            try:
                httpx.head(served.url("small"), timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None, log.read_text()
                subprocess.run(["sleep", "0.1"], check=True)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=20)


def _no_complete_file_and_withdrawn(served: Shim, name: str, size: int) -> None:
    status, got, length = served.get(name)
    assert length == size if status == 200 else status == 503, status
    assert len(got) < size, "a complete file reached the client"
    assert "do not match manifest" in served.text()
    assert "withdrawn" in served.text()
    assert served.get(name)[0] == 404  # no longer offered


def test_the_repo_path_serves_both_files(files: Files) -> None:
    with shim(files) as served:
        assert "the repo's block files" in served.text()
        for name, data in files.data.items():
            assert served.get(name) == (200, data, len(data))


def _flip(data: bytes) -> bytes:
    at = min(1000, len(data) // 2)
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _swapped_links(files: Files, a: CID, b: CID) -> bytes:
    """The root node linking ``b`` where it linked ``a`` and the other way round: a valid
    node over blocks the repo holds, giving the file's bytes in another order."""
    node = files.blocks.read(files.cids["big"])
    return node.replace(a.bytes, b"\0" * 36).replace(b.bytes, a.bytes).replace(b"\0" * 36, b.bytes)


@pytest.mark.parametrize(
    "damage", ["flipped-leaf", "truncated-leaf", "another-valid-block", "tampered-node"]
)
def test_a_damaged_block_cuts_the_download_short_and_withdraws_the_build(
    files: Files, damage: str
) -> None:
    leaves = files.leaves("big")
    leaf = leaves[3]
    good = files.block_file(leaf).read_bytes()
    target, data = {
        "flipped-leaf": (leaf, _flip(good)),
        "truncated-leaf": (leaf, good[: len(good) // 2]),
        "another-valid-block": (leaf, files.block_file(leaves[1]).read_bytes()),
        "tampered-node": (files.cids["big"], _swapped_links(files, leaves[0], leaves[1])),
    }[damage]
    with files.altered(target, data), shim(files) as served:
        _no_complete_file_and_withdrawn(served, "big", BIG)
        if damage != "tampered-node":
            assert f"block {leaf} at byte {3 * MIB} does not hash to it" in served.text()


def test_a_damaged_small_file_is_refused_before_any_byte(files: Files) -> None:
    (block,) = files.leaves("small")
    with files.altered(block, _flip(files.data["small"])), shim(files) as served:
        _no_complete_file_and_withdrawn(served, "small", SMALL)


def test_ranges_are_checked_up_to_their_last_byte(files: Files) -> None:
    data = files.data["big"]
    leaves = files.leaves("big")
    with shim(files) as served:
        status, got, _ = served.get("big", {"Range": f"bytes={MIB - 10}-{2 * MIB + 10}"})
        assert (status, got) == (206, data[MIB - 10 : 2 * MIB + 11])
        status, got, _ = served.get("big", {"Range": f"bytes={BIG - 100}-"})
        assert (status, got) == (206, data[-100:])
    good = files.block_file(leaves[4]).read_bytes()
    with files.altered(leaves[4], _flip(good)), shim(files) as served:
        # a range before the damaged block is served: every block up to it checked
        status, got, _ = served.get("big", {"Range": f"bytes=0-{2 * MIB}"})
        assert (status, got) == (206, data[: 2 * MIB + 1])
        # a range over it is not
        status, got, length = served.get("big", {"Range": f"bytes={3 * MIB}-{5 * MIB}"})
        assert status == 503 or (status == 206 and len(got) < length == 2 * MIB + 1)
        assert "do not match manifest" in served.text()


@contextmanager
def _missing_locally(files: Files, cid: CID) -> Iterator[None]:
    """``cid`` removed from the local repo (the peer still has it); back after."""
    good = files.block_file(cid).read_bytes()
    with files.local.client() as client:
        client.block_rm([cid])
        try:
            yield
        finally:
            if not files.block_file(cid).exists():
                client.block_put(good)


def test_a_block_the_repo_lacks_comes_through_the_gateway_checked(files: Files) -> None:
    leaves = files.leaves("big")
    with _missing_locally(files, leaves[2]), shim(files) as served:
        assert served.get("big") == (200, files.data["big"], BIG)
        assert "block not in the repo, using the gateway" in served.text()


def test_after_a_fallback_the_gateways_bytes_are_checked_too(files: Files) -> None:
    """Leaf 2 is missing, so the gateway serves from there on; leaf 5, which the repo
    walk never reaches, is damaged in the repo the gateway reads."""
    leaves = files.leaves("big")
    good = files.block_file(leaves[5]).read_bytes()
    with (
        _missing_locally(files, leaves[2]),
        files.altered(leaves[5], _flip(good)),
        shim(files) as served,
    ):
        status, got, length = served.get("big")
        # a plain stream: its pieces go out as read, the last held for the whole file's check
        assert status == 200 and len(got) < length == BIG
        assert "block not in the repo, using the gateway" in served.text()
        assert "do not match manifest" in served.text()
