"""The shim's byte sources against a real Kubo node: repo files, gateway, RPC ``cat``."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from ipfsbin.codec.cid import CID, RAW
from ipfsbin.codec.unixfs import decode_file_node
from ipfsbin.descriptor.model import Descriptor
from ipfsbin.errors import KuboError, KuboStreamError, KuboUnavailableError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.flatfs import FlatfsBlocks
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.manifest import Manifest
from ipfsbin.serve.sources import (
    GATEWAY_ENV,
    LARGEST_READ,
    REPO_ENV,
    GatewaySource,
    KuboSource,
    RepoSource,
    find_gateway,
    find_repo_blocks,
)
from tests.unit.maintainer.maintainer_helpers import PLATFORM, make_manifest

pytestmark = pytest.mark.integration

DESCRIPTOR = Descriptor(
    platform=PLATFORM.cid, cpv="app-misc/foo-1", slot="0", subslot="0", repository="gentoo",
    eapi="8", use=(), iuse=(), deps=(), requires=(),
)  # fmt: skip

SIZE = 5 * (1 << 20) + 12345


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def added(kubo_node: ManagedNode) -> tuple[CID, bytes]:
    data = os.urandom(SIZE)
    with kubo_node.client() as client:
        cid = client.add(iter([data]), pin=True, chunker="size-1048576").cid
    return cid, data


def test_the_gateway_hands_over_the_file_in_large_pieces(
    kubo_node: ManagedNode, added: tuple[CID, bytes]
) -> None:
    cid, data = added
    with kubo_node.client() as client:
        source = GatewaySource(kubo_node.gateway_url, KuboSource(client))
        pieces = list(source.chunks(cid, SIZE))
    assert hashlib.sha256(b"".join(pieces)).digest() == hashlib.sha256(data).digest()
    assert max(len(p) for p in pieces) == LARGEST_READ  # one download: the largest reads


def test_no_gateway_there_falls_back_to_the_rpc(
    kubo_node: ManagedNode, added: tuple[CID, bytes]
) -> None:
    cid, data = added
    with kubo_node.client() as client:
        source = GatewaySource(f"http://127.0.0.1:{_closed_port()}", KuboSource(client))
        assert b"".join(source.chunks(cid, SIZE)) == data


def test_a_size_the_gateway_does_not_deliver_is_an_error(
    kubo_node: ManagedNode, added: tuple[CID, bytes]
) -> None:
    cid, _ = added
    with kubo_node.client() as client:
        source = GatewaySource(kubo_node.gateway_url, KuboSource(client))
        with pytest.raises(KuboStreamError, match=f"after {SIZE} of {SIZE + 1} bytes"):
            b"".join(source.chunks(cid, SIZE + 1))
        with pytest.raises(KuboStreamError, match=f"more than {SIZE - 1} bytes"):
            b"".join(source.chunks(cid, SIZE - 1))


def test_where_the_gateway_is_found(
    kubo_node: ManagedNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPFSBIN_API", kubo_node.api_multiaddr)
    monkeypatch.delenv(GATEWAY_ENV, raising=False)
    with kubo_node.client() as client:
        # the test node listens on an OS-chosen port: its config names port 0
        assert find_gateway(client) is None
        monkeypatch.setenv(GATEWAY_ENV, kubo_node.gateway_url)
        assert find_gateway(client) == kubo_node.gateway_url.rstrip("/")
        monkeypatch.delenv(GATEWAY_ENV)
        kubo_node.run("config", "--json", "Addresses.Gateway", '["/ip4/0.0.0.0/tcp/8089"]')
        try:
            assert find_gateway(client) == "http://127.0.0.1:8089"
        finally:
            kubo_node.run("config", "Addresses.Gateway", "/ip4/127.0.0.1/tcp/0")


@pytest.mark.slow
def test_kubo_stopped_mid_read_is_an_error_never_a_short_file(kubo_nodes) -> None:  # type: ignore[no-untyped-def]
    (node,) = kubo_nodes(1, connect=False)
    size = 64 * (1 << 20)
    with node.client() as client:
        cid = client.add(iter(os.urandom(1 << 20) for _ in range(64)), pin=True).cid
        source = GatewaySource(node.gateway_url, KuboSource(client))
        received = 0
        with pytest.raises((KuboStreamError, KuboUnavailableError)) as caught:
            for chunk in source.chunks(cid, size):
                if received == 0:
                    node.kill()
                received += len(chunk)
        assert received < size
        assert "Kubo" in caught.value.message or "kubo" in caught.value.message


def _nowhere(client_port: int) -> GatewaySource:
    """A fallback with no daemon behind it: any download it is handed fails."""
    rpc = KuboSource(KuboClient.from_multiaddr(f"/ip4/127.0.0.1/tcp/{client_port}", timeout=5))
    return GatewaySource(f"http://127.0.0.1:{_closed_port()}", rpc)


def _manifest(cid: CID, data: bytes) -> tuple[Manifest, CID]:
    """A manifest naming ``data`` as the UnixFS file ``cid``, and its CID."""
    manifest = make_manifest(DESCRIPTOR, data, binpkg=cid)
    return manifest, manifest.to_block()[0]


def _leaves(blocks: FlatfsBlocks, root: CID) -> list[CID]:
    found, pending = [], [root]
    while pending:
        cid = pending.pop()
        if cid.codec == RAW:
            found.append(cid)
        else:
            pending.extend(reversed(decode_file_node(cid, blocks.read(cid)).children))
    return found


def test_the_repo_files_give_the_file_without_the_daemon(
    kubo_node: ManagedNode, added: tuple[CID, bytes]
) -> None:
    cid, data = added
    blocks = FlatfsBlocks.open(kubo_node.repo_path)
    assert blocks is not None
    pieces = list(RepoSource(blocks, _nowhere(_closed_port())).checked(*_manifest(cid, data)))
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) == LARGEST_READ  # a whole 1 MiB leaf, once checked


@pytest.mark.parametrize("missing", [0, 1, 3])
def test_from_a_block_the_repo_lacks_the_gateway_gives_the_rest(kubo_nodes, missing: int) -> None:  # type: ignore[no-untyped-def]
    local, peer = kubo_nodes(2)
    data = os.urandom(3 * (1 << 20) + 99)
    with peer.client() as client:
        client.add(iter([data]), pin=True, chunker="size-1048576")
    with local.client() as client:
        cid = client.add(iter([data]), pin=False, chunker="size-1048576").cid
        blocks = FlatfsBlocks.open(local.repo_path)
        assert blocks is not None
        client.block_rm([_leaves(blocks, cid)[missing]])
        source = RepoSource(blocks, GatewaySource(local.gateway_url, KuboSource(client)))
        # the peer sent the missing leaf
        assert b"".join(source.checked(*_manifest(cid, data))) == data


def test_a_leaf_gone_mid_download_with_no_daemon_is_an_error_never_a_short_file(
    kubo_node: ManagedNode,
) -> None:
    data = os.urandom(8 * (1 << 20))  # more leaves than are hashed ahead of the first
    with kubo_node.client() as client:
        cid = client.add(iter([data]), pin=False, chunker="size-1048576").cid
    blocks = FlatfsBlocks.open(kubo_node.repo_path)
    assert blocks is not None
    last = _leaves(blocks, cid)[-1]
    received = 0
    with pytest.raises(KuboError):
        for piece in RepoSource(blocks, _nowhere(_closed_port())).checked(*_manifest(cid, data)):
            if received == 0:
                os.unlink(blocks.path(last))  # as the repo's GC would
            received += len(piece)
    assert 0 < received < len(data)


def test_where_the_repo_is_found(
    kubo_node: ManagedNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REPO_ENV, str(kubo_node.repo_path))
    found = find_repo_blocks()
    assert found is not None and found.root == kubo_node.repo_path / "blocks"
    monkeypatch.setenv(REPO_ENV, str(tmp_path))  # no flatfs there: not read
    assert find_repo_blocks() is None
    monkeypatch.delenv(REPO_ENV)
    monkeypatch.setenv("IPFSBIN_API", kubo_node.api_multiaddr)  # another daemon is named
    assert find_repo_blocks() is None
