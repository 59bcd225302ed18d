"""Hostile bytes: the envelope decoders raise only IpfsbinError subclasses, whatever they get."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trust_helpers import A, B, commit_on, root_v1

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR, cid_for
from ipfsbin.errors import IpfsbinError
from ipfsbin.trust.commit import SignedCommit
from ipfsbin.trust.keys import PublicKey
from ipfsbin.trust.root import SignedRoot
from ipfsbin.trust.signing import ENVELOPE_TYPE, Signed, check_signatures

ROOT = root_v1()
COMMIT = commit_on(ROOT, A, B)
SAMPLES: list[tuple[Any, Signed[Any]]] = [(SignedRoot, ROOT), (SignedCommit, COMMIT)]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_everything(
    cls: type[SignedRoot] | type[SignedCommit], env: bytes, payload: bytes
) -> None:
    try:
        signed = cls.from_blocks(env, payload)
    except IpfsbinError:
        return
    # whatever decodes must also survive being checked
    check_signatures(signed, ROOT.root.maintainers)


@FUZZ
@given(env=st.binary(max_size=400), payload=st.binary(max_size=400), which=st.sampled_from([0, 1]))
def test_random_bytes(env: bytes, payload: bytes, which: int) -> None:
    decode_everything(SAMPLES[which][0], env, payload)


@FUZZ
@given(
    which=st.sampled_from([0, 1]),
    target=st.sampled_from(["envelope", "payload"]),
    edits=st.lists(
        st.tuples(st.integers(0, 2000), st.integers(0, 255), st.sampled_from("rid")),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_blocks(which: int, target: str, edits: list[tuple[int, int, str]]) -> None:
    cls, sample = SAMPLES[which]
    data = bytearray(sample.block if target == "envelope" else sample.payload_block)
    for position, byte, op in edits:
        pos = position % (len(data) + 1)
        if op == "r" and pos < len(data):
            data[pos] = byte
        elif op == "i":
            data.insert(pos, byte)
        elif pos < len(data):
            del data[pos]
    if target == "envelope":
        decode_everything(cls, bytes(data), sample.payload_block)
    else:
        # re-link the mutated payload so the decoder gets past the hash check
        payload = bytes(data)
        env = dagcbor.encode(
            {"type": ENVELOPE_TYPE, "signed": cid_for(DAG_CBOR, payload), "signatures": []}
        )
        decode_everything(cls, env, payload)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
    | st.binary(max_size=40)
    | st.builds(lambda raw: cid_for(DAG_CBOR, raw), st.binary(max_size=8))
    | st.builds(lambda raw: PublicKey(raw=raw).key_id, st.binary(min_size=32, max_size=32)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def replace_somewhere(value: Any, path: list[int], new: Any) -> Any:
    """Replace the element reached by following ``path`` (indexes into maps and lists)."""
    if not path or not isinstance(value, (dict, list)) or not value:
        return new
    step, rest = path[0], path[1:]
    if isinstance(value, dict):
        key = sorted(value)[step % len(value)]
        return {**value, key: replace_somewhere(value[key], rest, new)}
    index = step % len(value)
    return [*value[:index], replace_somewhere(value[index], rest, new), *value[index + 1 :]]


@FUZZ
@given(
    which=st.sampled_from([0, 1]),
    target=st.sampled_from(["envelope", "payload"]),
    path=st.lists(st.integers(0, 50), min_size=1, max_size=4),
    new=values,
)
def test_structurally_mutated_values(which: int, target: str, path: list[int], new: Any) -> None:
    cls, sample = SAMPLES[which]
    if target == "payload":
        payload = dagcbor.encode(replace_somewhere(dagcbor.decode(sample.payload_block), path, new))
        env_value = dagcbor.decode(sample.block)
        env_value["signed"] = cid_for(DAG_CBOR, payload)
        env = dagcbor.encode(env_value)
    else:
        payload = sample.payload_block
        env = dagcbor.encode(replace_somewhere(dagcbor.decode(sample.block), path, new))
    decode_everything(cls, env, payload)


def test_sample_blocks_decode() -> None:
    assert SignedRoot.from_blocks(ROOT.block, ROOT.payload_block).cid == ROOT.cid
    assert isinstance(COMMIT.cid, CID)
