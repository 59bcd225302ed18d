"""Our DAG-CBOR and CAR against a real Kubo: same CIDs, same data, CARs both ways."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ipfsbin.codec import dagcbor
from ipfsbin.codec.car import car_bytes, import_car, iter_car
from ipfsbin.codec.cid import CID, DAG_CBOR, RAW, cid_for
from ipfsbin.errors import KuboError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.store.memory import MemoryBlockStore

pytestmark = pytest.mark.integration

LEAVES = [f"leaf {i}".encode() for i in range(3)]
LEAF_CIDS = [cid_for(RAW, leaf) for leaf in LEAVES]

VALUES: list[Any] = [
    {"type": "ipfsbin/test/1", "n": 1, "neg": -(2**63), "big": 2**64 - 1},
    {"float": 1.5, "tiny": 5e-324, "neg_zero": -0.0, "list": [None, True, False]},
    {"unicode": "zürich ✓", "é": 1, "bytes": b"\x00\xff", "nested": {"a": [{"b": []}]}},
    {"links": LEAF_CIDS, "single": LEAF_CIDS[0]},
]


# Kubo's data model stops at int64 (`dag get` fails with "unsigned integer out of
# range of int64 type"), although it stores and hashes the block like we do.
KUBO_READABLE = [VALUES[0] | {"big": 2**63 - 1}, *VALUES[1:]]


def _json_of(value: Any) -> Any:
    """The DAG-JSON shape Kubo's dag/get prints for a value."""
    if type(value) is CID:
        return {"/": str(value)}
    if type(value) is bytes:
        return {"/": {"bytes": base64.b64encode(value).decode().rstrip("=")}}
    if type(value) is dict:
        return {k: _json_of(v) for k, v in value.items()}
    if type(value) is list:
        return [_json_of(v) for v in value]
    return value


def _index_dag() -> tuple[CID, list[tuple[CID, bytes]]]:
    blocks = [(cid, leaf) for cid, leaf in zip(LEAF_CIDS, LEAVES, strict=True)]
    children = []
    for i in range(3):
        cid, data = dagcbor.encode_block({"leaf": LEAF_CIDS[i], "i": i, "meta": {"ok": True}})
        children.append(cid)
        blocks.append((cid, data))
    root, data = dagcbor.encode_block({"entries": children, "type": "ipfsbin/test/1"})
    return root, [(root, data), *blocks]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_kubo_computes_the_same_cid(kubo_client: KuboClient, value: Any) -> None:
    cid, data = dagcbor.encode_block(value)
    assert kubo_client.block_put(data, codec=DAG_CBOR) == cid
    assert kubo_client.block_get(cid) == data


@pytest.mark.parametrize("value", KUBO_READABLE, ids=range(len(KUBO_READABLE)))
def test_dag_get_shows_the_same_data(
    kubo_node: ManagedNode, kubo_client: KuboClient, ipfs_cli: Any, value: Any
) -> None:
    cid, data = dagcbor.encode_block(value)
    kubo_client.block_put(data, codec=DAG_CBOR)
    shown = json.loads(ipfs_cli(kubo_node, "dag", "get", "--output-codec=dag-json", str(cid)))
    assert shown == json.loads(json.dumps(_json_of(value)))
    raw = ipfs_cli(kubo_node, "dag", "get", "--output-codec=dag-cbor", str(cid))
    assert raw == data


def test_our_car_imports_into_kubo(kubo_client: KuboClient) -> None:
    root, blocks = _index_dag()
    result = kubo_client.dag_import(car_bytes([root], blocks), expected_roots=[root])
    assert result.roots == (root,)
    assert result.blocks == len(blocks)
    for cid, data in blocks:
        assert kubo_client.block_get(cid, offline=True) == data


def test_kubo_export_reads_back_verified(kubo_client: KuboClient) -> None:
    root, blocks = _index_dag()
    kubo_client.block_put_many([d for c, d in blocks if c.codec == DAG_CBOR], codec=DAG_CBOR)
    kubo_client.block_put_many(LEAVES, codec=RAW)

    header, sections = iter_car(kubo_client.dag_export(root, offline=True))
    assert header.roots == (root,)
    assert sorted(sections) == sorted(blocks)

    store = MemoryBlockStore()
    result = import_car(kubo_client.dag_export(root, offline=True), store)
    assert result.blocks == len(blocks)
    assert dagcbor.decode_block(root, store.get(root))["type"] == "ipfsbin/test/1"


def test_kubo_refuses_a_car_block_that_does_not_hash_to_its_cid(kubo_client: KuboClient) -> None:
    """What lets ``share`` write its CARs unverified: Kubo checks every block on import."""
    cid = cid_for(RAW, b"the bytes the CID names")
    car = car_bytes([cid], [(cid, b"other bytes")], verify=False)
    with pytest.raises(KuboError, match="integrity"):
        kubo_client.dag_import(car, pin_roots=False)
    with pytest.raises(KuboError):
        kubo_client.block_get(cid, offline=True)
