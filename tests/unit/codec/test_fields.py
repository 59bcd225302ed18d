"""The shared field readers every schema layer decodes with."""

from __future__ import annotations

import pytest

from ipfsbin.codec.cid import DAG_CBOR, RAW, cid_for
from ipfsbin.codec.fields import (
    MAX_INT,
    expect_fields,
    expect_type,
    get_cid,
    get_int,
    get_str,
    kind_of,
)
from ipfsbin.errors import SchemaError

LINK = cid_for(RAW, b"x")


def test_expect_fields_names_missing_and_unknown() -> None:
    required = frozenset({"a", "b"})
    with pytest.raises(SchemaError, match=r"thing lacks the field\(s\) b"):
        expect_fields({"a": 1}, "thing", required)
    with pytest.raises(SchemaError, match=r"thing has unknown field\(s\) z") as info:
        expect_fields({"a": 1, "b": 2, "z": 3}, "thing", required)
    assert info.value.hint is not None and "upgrade" in info.value.hint
    assert expect_fields({"a": 1, "b": 2, "c": 3}, "thing", required, frozenset({"c"}))


def test_expect_type_hints_an_upgrade_only_for_a_newer_version() -> None:
    with pytest.raises(SchemaError, match="this ipfsbin reads") as newer:
        expect_type({"type": "ipfsbin/thing/2"}, "thing", "ipfsbin/thing/1")
    assert newer.value.hint is not None and "upgrade" in newer.value.hint
    with pytest.raises(SchemaError, match="expected 'ipfsbin/thing/1'") as other:
        expect_type({"type": "ipfsbin/other/1"}, "thing", "ipfsbin/thing/1")
    assert other.value.hint is None
    with pytest.raises(SchemaError, match="thing must be a map, got list"):
        expect_type([], "thing", "ipfsbin/thing/1")
    expect_type({"type": "ipfsbin/thing/1"}, "thing", "ipfsbin/thing/1")


def test_scalars_are_checked_by_data_model_kind() -> None:
    with pytest.raises(SchemaError, match="must be an integer, got bool"):
        get_int(True, "n")
    with pytest.raises(SchemaError, match=f"between 1 and {MAX_INT}"):
        get_int(0, "n", minimum=1)
    with pytest.raises(SchemaError, match="must be a string, got null"):
        get_str(None, "s")
    with pytest.raises(SchemaError, match="must link a dag-cbor block"):
        get_cid(LINK, "l", dag_cbor=True)
    assert get_cid(cid_for(DAG_CBOR, b"\xa0"), "l", dag_cbor=True).codec == DAG_CBOR


def test_kind_of_shows_the_link() -> None:
    assert kind_of(None) == "null"
    assert kind_of(b"") == "bytes"
    assert kind_of(LINK) == f"a link ({LINK})"
