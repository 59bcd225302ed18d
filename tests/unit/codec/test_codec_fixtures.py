"""The public IPLD codec fixtures (ipld/codec-fixtures), DAG-CBOR part.

Positive fixtures must decode, re-encode to the same bytes and hash to the
CID in their file name; negative ones must be refused with CodecError.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID, DAG_CBOR
from ipfsbin.errors import CodecError

FIXTURES = Path(__file__).parents[2] / "data" / "ipld-codec-fixtures"
POSITIVE = sorted(FIXTURES.glob("fixtures/*/*.dag-cbor"))
NEGATIVE = [
    case
    for path in sorted(FIXTURES.glob("negative-fixtures/dag-cbor/decode/*.json"))
    for case in json.loads(path.read_text())
]


def test_fixture_set_is_present() -> None:
    assert len(POSITIVE) == 125
    assert NEGATIVE


@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.parent.name)
def test_positive_fixture_round_trips(path: Path) -> None:
    data = path.read_bytes()
    expected = CID.from_text(path.name.removesuffix(".dag-cbor"))
    assert expected.codec == DAG_CBOR

    value = dagcbor.decode_block(expected, data)
    cid, again = dagcbor.encode_block(value)

    assert again == data
    assert cid == expected


@pytest.mark.parametrize("case", NEGATIVE, ids=lambda c: c["name"])
def test_negative_fixture_is_refused(case: dict[str, str]) -> None:
    with pytest.raises(CodecError, match="(?i)duplicate|repeated"):
        dagcbor.decode(bytes.fromhex(case["hex"]))
