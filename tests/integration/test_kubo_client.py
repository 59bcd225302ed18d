"""The Kubo RPC client and the Kubo block store against real Kubo daemons."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, RAW, cid_for
from ipfsbin.errors import (
    BlockNotFoundError,
    KuboCommandError,
    KuboStreamError,
    KuboUnavailableError,
)
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.netlimits import operation_deadline
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.store.base import BlockStore
from ipfsbin.store.kubo import KuboBlockStore

pytestmark = pytest.mark.integration

CHUNK = 262144


@pytest.fixture(scope="module")
def pair(kubo_nodes) -> tuple[ManagedNode, ManagedNode]:  # type: ignore[no-untyped-def]
    first, second = kubo_nodes(2)
    return first, second


def test_add_matches_the_ipfs_command_line_and_cat_round_trips(
    kubo_node: ManagedNode, kubo_client: KuboClient, ipfs_cli, tmp_path: Path
) -> None:
    data = os.urandom(3 * CHUNK + 12345)
    path = tmp_path / "pkg.gpkg.tar"
    path.write_bytes(data)
    cli_cid = ipfs_cli(
        kubo_node,
        "add",
        "-Q",
        "--cid-version=1",
        "--raw-leaves",
        f"--chunker=size-{CHUNK}",
        str(path),
    )
    seen: list[int] = []

    added = kubo_client.add(path, progress=seen.append)

    assert str(added.cid) == cli_cid.decode().strip()
    assert added.size == len(data)
    assert added.dag_size > len(data)
    assert seen[-1] == len(data)
    assert kubo_client.cat_bytes(added.cid) == data
    assert (
        kubo_client.cat_bytes(added.cid, offset=CHUNK - 5, length=10) == data[CHUNK - 5 : CHUNK + 5]
    )
    assert kubo_client.files_stat(added.cid).size == len(data)


def test_add_accepts_bytes_and_chunk_iterables_with_the_same_cid(kubo_client: KuboClient) -> None:
    data = os.urandom(CHUNK + 7)
    from_bytes = kubo_client.add(data, pin=False)
    from_chunks = kubo_client.add(iter([data[:1000], data[1000:]]), pin=False)
    hashed_only = kubo_client.add(data, only_hash=True)
    assert from_bytes.cid == from_chunks.cid == hashed_only.cid
    assert from_bytes.cid.codec_name == "dag-pb"
    single = kubo_client.add(b"small", pin=False)
    assert single.cid == cid_for(RAW, b"small")  # CIDv1 with raw leaves: one raw block


def test_cat_refuses_a_wrong_expected_size(kubo_client: KuboClient) -> None:
    cid = kubo_client.add(b"twelve bytes", pin=False).cid
    with pytest.raises(KuboStreamError, match="announces 12 bytes, expected 13"):
        kubo_client.cat_bytes(cid, expected_size=13)


def test_cat_of_a_file_missing_a_block_raises_instead_of_returning_short_data(
    kubo_client: KuboClient,
) -> None:
    data = os.urandom(3 * CHUNK)
    cid = kubo_client.add(data, pin=False).cid
    kubo_client.block_rm([cid_for(RAW, data[CHUNK : 2 * CHUNK])])
    received = bytearray()
    # Kubo has already sent 200 when it finds the hole; its error goes into a
    # trailer httpx drops, so only the byte count shows the loss.
    with pytest.raises(KuboStreamError, match=f"ended after {CHUNK} of {3 * CHUNK} bytes"):
        for chunk in kubo_client.cat(cid, offline=True):
            received += chunk
    assert bytes(received) == data[:CHUNK]


def test_block_put_get_stat(kubo_client: KuboClient) -> None:
    cid, block = dagcbor.encode_block({"type": "test/1", "n": 1})
    assert kubo_client.block_put(block, codec=DAG_CBOR) == cid
    assert kubo_client.block_get(cid) == block
    stat = kubo_client.block_stat(cid)
    assert (stat.cid, stat.size) == (cid, len(block))
    many = [f"block {i}".encode() for i in range(300)]  # more than one batch
    assert kubo_client.block_put_many(many) == [cid_for(RAW, b) for b in many]


def test_a_bad_cid_gives_kubos_own_message(kubo_client: KuboClient) -> None:
    short_digest = CID(b"\x01\x55\x12\x05" + bytes(5))
    with pytest.raises(KuboCommandError, match="digest too small") as caught:
        kubo_client.block_get(short_digest)
    assert caught.value.command == "block/get"
    assert caught.value.status == 500
    assert "digest too small" in caught.value.kubo_message


def test_pins_add_list_update_remove(kubo_client: KuboClient) -> None:
    old = kubo_client.add(b"old index", pin=False).cid
    new = kubo_client.add(b"new index", pin=False).cid
    assert kubo_client.pin_add([old]) == (old,)
    assert kubo_client.is_pinned(old)
    assert old in {p.cid for p in kubo_client.pin_ls(pin_type="recursive")}

    kubo_client.pin_update(old, new)
    assert not kubo_client.is_pinned(old)
    assert [p.type for p in kubo_client.pin_ls([new])] == ["recursive"]

    assert kubo_client.pin_rm([new]) == (new,)
    assert not kubo_client.is_pinned(new)
    with pytest.raises(KuboCommandError, match="not pinned"):
        kubo_client.pin_rm([new])


def test_key_import_and_list(kubo_client: KuboClient) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    info = kubo_client.key_import("maintainer", pem)
    assert info.name == "maintainer"
    assert info.id.startswith("k51")
    assert info in kubo_client.key_list()
    with pytest.raises(KuboCommandError, match="PEM block not found"):
        kubo_client.key_import("broken", b"not a key")
    kubo_client.key_rm(["maintainer"])
    assert "maintainer" not in {k.name for k in kubo_client.key_list()}


def test_routing_put_get_carries_a_record_between_nodes(pair) -> None:  # type: ignore[no-untyped-def]
    first, second = pair
    with first.client() as a, second.client() as b:
        cid = a.add(b"commit 1").cid
        entry = a.name_publish(cid, lifetime=timedelta(hours=1), ttl=timedelta(seconds=1))
        record = a.routing_get(f"/ipns/{entry.name}", timeout=timedelta(seconds=20))
        assert 0 < len(record) <= 10240

        b.routing_put(f"/ipns/{entry.name}", record, allow_offline=True)

        assert b.routing_get(f"/ipns/{entry.name}") == record
        assert b.name_resolve(entry.name, nocache=True) == f"/ipfs/{cid}"
        # Kubo drops an invalid record without an error: a put proves nothing,
        # and the valid record stays.
        b.routing_put(f"/ipns/{entry.name}", b"junk", allow_offline=True)
        assert b.routing_get(f"/ipns/{entry.name}") == record


def test_swarm_connect_and_fetch_a_block_from_the_other_node(pair) -> None:  # type: ignore[no-untyped-def]
    first, second = pair
    with first.client() as a, second.client() as b:
        assert first.peer_id in {p.peer_id for p in b.swarm_peers()}
        cid, block = dagcbor.encode_block({"only on": "the first node"})
        a.block_put(block, codec=DAG_CBOR)
        local_b = KuboBlockStore(b)
        with pytest.raises(BlockNotFoundError, match="not in the local repo"):
            local_b.get(cid)
        fetching_b = KuboBlockStore(b, offline=False, fetch_timeout=timedelta(seconds=20))
        assert fetching_b.get(cid) == block
        assert local_b.has(cid)


def test_dag_export_and_import(pair) -> None:  # type: ignore[no-untyped-def]
    first, second = pair
    with first.client() as a, second.client() as b:
        root = a.add(os.urandom(2 * CHUNK), pin=False).cid
        car = b"".join(a.dag_export(root))
        result = b.dag_import(car, expected_roots=[root])
        assert result.roots == (root,)
        assert result.blocks == 3  # two raw leaves and the dag-pb root
        assert b.is_pinned(root)
        assert b.dag_stat(root, offline=True).num_blocks == 3


def test_block_store_over_kubo(kubo_client: KuboClient) -> None:
    store = KuboBlockStore(kubo_client)
    assert isinstance(store, BlockStore)
    cid = store.put(dagcbor.encode({"k": "v"}))
    assert store.get(cid) == dagcbor.encode({"k": "v"})
    blocks = [dagcbor.encode_block({"i": i}) for i in range(10)]
    store.put_many(blocks)
    assert all(store.has(c) for c, _ in blocks)
    absent = cid_for(DAG_CBOR, b"\xa1ano")
    assert not store.has(absent)
    started = time.monotonic()
    with pytest.raises(BlockNotFoundError, match=str(absent)):
        store.get(absent)
    assert time.monotonic() - started < 5


def test_repo_stat_and_gc(kubo_client: KuboClient) -> None:
    loose = kubo_client.block_put(os.urandom(1000))
    before = kubo_client.repo_stat()
    assert before.num_objects >= 1
    assert before.repo_path
    removed = kubo_client.repo_gc()
    assert loose in removed
    with pytest.raises(KuboCommandError, match="not found"):
        kubo_client.block_get(loose, offline=True)
    assert kubo_client.repo_stat().repo_size <= before.repo_size


def test_an_absent_daemon_is_reported_with_a_hint() -> None:
    with KuboClient.from_multiaddr("/ip4/127.0.0.1/tcp/9", timeout=2.0) as client:
        with pytest.raises(KuboUnavailableError, match="cannot reach the Kubo API") as caught:
            client.id()
    assert caught.value.hint is not None
    assert "ipfsbin node start" in caught.value.hint


@pytest.mark.slow
def test_a_daemon_killed_during_cat_never_yields_a_complete_result(kubo_nodes) -> None:  # type: ignore[no-untyped-def]
    (node,) = kubo_nodes(1, connect=False)
    size = 64 * 1024 * 1024
    with node.client() as client:
        cid = client.add(iter(os.urandom(1 << 20) for _ in range(64)), pin=True).cid
        received = 0
        with pytest.raises((KuboStreamError, KuboUnavailableError)):
            for chunk in client.cat(cid):
                if received == 0:
                    node.kill()
                received += len(chunk)
        assert received < size


def test_the_client_uses_the_httpx_client_it_is_given(kubo_node: ManagedNode) -> None:
    base = kubo_node.api_multiaddr.split("/")
    with httpx.Client(base_url=f"http://{base[2]}:{base[4]}") as http:
        assert KuboClient(http).version().version == "0.39.0"


def test_the_operation_deadline_cuts_a_kubo_call_waiting_on_the_network(
    kubo_client: KuboClient,
) -> None:
    # a block nobody has: Kubo would look for it for the whole 60 s it was given
    missing = cid_for(RAW, os.urandom(32))
    started = time.monotonic()
    with operation_deadline(1.0), pytest.raises(KuboUnavailableError, match="deadline passed"):
        kubo_client.block_get(missing, timeout=timedelta(seconds=60))
    assert time.monotonic() - started < 3.0
    assert kubo_client.id().peer_id  # the client is still usable
