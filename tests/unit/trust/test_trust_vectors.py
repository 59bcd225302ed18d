"""The golden vectors in schema/examples/trust/: bytes, CIDs and verdicts as the spec states."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from ipfsbin import errors
from ipfsbin.codec.cid import CID
from ipfsbin.index.changeset import decode_part
from ipfsbin.store.memory import MemoryBlockStore
from ipfsbin.trust.commit import SignedCommit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot
from ipfsbin.trust.signing import verify_signatures
from ipfsbin.trust.state import RootPin, TrustedChain

VECTORS = Path(__file__).resolve().parents[3] / "schema" / "examples" / "trust"
MANIFEST: dict[str, Any] = json.loads((VECTORS / "vectors.json").read_text())
OBJECTS = {o["name"]: o for o in MANIFEST["objects"]}


def load(name: str) -> Any:
    entry = OBJECTS[name]
    cls = SignedRoot if entry["kind"] == "root" else SignedCommit
    return cls.from_blocks(
        (VECTORS / entry["envelope"]).read_bytes(),
        (VECTORS / entry["payload"]).read_bytes(),
        cid=CID.from_text(entry["envelope_cid"]),
    )


def test_keys_come_from_their_seeds() -> None:
    for entry in MANIFEST["keys"].values():
        assert SigningKey.from_seed(bytes.fromhex(entry["seed"])).key_id == entry["key_id"]


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_vector_decodes_to_the_stated_cids(name: str) -> None:
    entry = OBJECTS[name]
    signed = load(name)
    assert str(signed.cid) == entry["envelope_cid"]
    assert str(signed.payload_id) == entry["payload_cid"]
    assert list(signed.signers) == entry["signers"]
    extra = {"roots": tuple(CID.from_text(r) for r in entry["roots"])} if "roots" in entry else {}
    if isinstance(signed, SignedCommit):
        assert signed.roots == extra.get("roots", ())
    # decoding keeps the source bytes: encoding again gives the same blocks
    again = type(signed).create(signed.payload, signed.signatures, **extra)
    assert (again.block, again.payload_block) == (signed.block, signed.payload_block)


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_vector_verdict(name: str) -> None:
    entry = OBJECTS[name]
    role = load(entry["maintainers_of"]).payload.maintainers
    if entry["expect"] == "ok":
        assert verify_signatures(load(name), role).met
    else:
        with pytest.raises(getattr(errors, entry["expect"])):
            verify_signatures(load(name), role)


def test_cosigned_commit_keeps_its_id() -> None:
    assert OBJECTS["commit-2-a"]["payload_cid"] == OBJECTS["commit-2-ab"]["payload_cid"]
    assert OBJECTS["commit-2-a"]["envelope_cid"] != OBJECTS["commit-2-ab"]["envelope_cid"]


def test_spec_walkthrough() -> None:
    store = MemoryBlockStore()
    for name in OBJECTS:
        store.put_many(load(name).blocks())
    state = TrustedChain(
        RootPin(cid=CID.from_text(OBJECTS["root-v1"]["payload_cid"])), now=MANIFEST["now"]
    )
    state.update_root(load("root-v1"))
    state.update_commit(load("commit-1"), store)
    state.update_commit(load("commit-2-ab"), store)
    assert state.height == 2
    state.update_commit(load("commit-3"), store)
    assert state.height == 3
    rotated = TrustedChain(RootPin(key_id=MANIFEST["keys"]["A"]["key_id"]), now=MANIFEST["now"])
    rotated.update_root(load("root-v1"))
    rotated.update_root(load("root-v2"))
    with pytest.raises(errors.RevokedKeyError):
        rotated.update_commit(load("commit-1"), store)


def test_roots_in_the_envelope_keep_the_commit_id() -> None:
    assert OBJECTS["commit-3-roots"]["payload_cid"] == OBJECTS["commit-3"]["payload_cid"]
    assert OBJECTS["commit-3-roots"]["envelope_cid"] != OBJECTS["commit-3"]["envelope_cid"]
    assert OBJECTS["commit-4"]["roots"] == [
        OBJECTS["root-v1"]["envelope_cid"],
        OBJECTS["root-v2"]["envelope_cid"],
    ]


def test_key_pinned_walkthrough_takes_roots_from_the_envelope() -> None:
    by_envelope = {OBJECTS[n]["envelope_cid"]: n for n in ("root-v1", "root-v2")}
    store = MemoryBlockStore()
    for name in OBJECTS:
        store.put_many(load(name).blocks())
    chain = TrustedChain(RootPin(key_id=MANIFEST["keys"]["B"]["key_id"]), now=MANIFEST["now"])
    head = load("commit-4")
    for cid in head.roots:
        chain.update_root(load(by_envelope[str(cid)]))
    chain.update_commit(head, store)
    assert chain.root.version == 2 and chain.height == 4


def test_commit_3_links_the_changeset_vector() -> None:
    (entry,) = MANIFEST["changesets"]
    cid = CID.from_text(entry["cid"])
    part = decode_part(cid, (VECTORS / entry["file"]).read_bytes())
    assert str(part.base) == entry["base"] == MANIFEST["index"]
    assert [key for key, _ in part.upserts] == sorted(key for key, _ in part.upserts)
    assert part.deletes == ("amd64-k8/dev-libs/libfoo/0.9/d77b02e44",)
    commit = load(entry["linked_by"]).commit
    assert commit.changes == (cid,)
    assert commit.parents == (CID.from_text(OBJECTS["commit-2-ab"]["payload_cid"]),)


def test_generator_reproduces_the_files() -> None:
    spec = importlib.util.spec_from_file_location("trust_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files, _ = module.build()
    assert sorted(files) == sorted(
        p.name for p in VECTORS.iterdir() if p.suffix in (".cbor", ".json")
    )
    for name, data in files.items():
        assert (VECTORS / name).read_bytes() == data, f"{name} is stale: run generate.py"
