"""The worked examples of schema/descriptor.md, checked against the code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ipfsbin import errors
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.descriptor import (
    BuildFacts,
    Descriptor,
    Package,
    Platform,
    normalize,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "schema" / "examples" / "descriptor"
FILES = sorted(EXAMPLES.glob("*.json"))
GOOD = [p for p in FILES if "error" not in json.loads(p.read_text())]
BAD = [p for p in FILES if "error" in json.loads(p.read_text())]


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _from_dagjson(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"/"}:
            return CID.from_text(value["/"])
        return {k: _from_dagjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dagjson(v) for v in value]
    return value


def test_examples_exist() -> None:
    names = {p.stem for p in FILES}
    assert "athlon-xp" in names  # the original request's flags must stay an example
    assert len(GOOD) >= 4 and len(BAD) >= 4


def test_every_example_is_explained_in_the_schema() -> None:
    prose = (EXAMPLES.parents[1] / "descriptor.md").read_text()
    for path in FILES:
        assert f"`{path.name}`" in prose, path.name


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_quoted_feature_lists_match_the_examples(path: Path) -> None:
    """Where section 7 quotes an example's CFLAGS features, they are the example's."""
    prose = (EXAMPLES.parents[1] / "descriptor.md").read_text()
    section = prose[prose.index(f"`{path.name}`") :].split("\n### ", 1)[0]
    features = _load(path)["platform"]["cflags"]["features"]
    quoted = " ".join(features)
    if "`features`" in section or '"features"' in section:
        flat = " ".join(section.replace("`", " ").replace('"', " ").replace(",", " ").split())
        assert quoted in flat, (path.name, quoted)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_example_normalizes_to_expected_objects_and_cids(path: Path) -> None:
    example = _load(path)
    package = normalize(BuildFacts(**example["facts"]), host_target=example["host_target"])
    assert package.platform.to_dag() == _from_dagjson(example["platform"])
    assert str(package.platform.cid) == example["platform_cid"]
    assert package.descriptor.to_dag() == _from_dagjson(example["descriptor"])
    assert str(package.descriptor.cid) == example["descriptor_cid"]


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_example_blocks_round_trip(path: Path) -> None:
    example = _load(path)
    platform_value = _from_dagjson(example["platform"])
    cid, data = dagcbor.encode_block(platform_value)
    assert str(cid) == example["platform_cid"]
    platform = Platform.from_block(cid, data)
    assert platform.block == (cid, data)
    descriptor_value = _from_dagjson(example["descriptor"])
    dcid, ddata = dagcbor.encode_block(descriptor_value)
    assert str(dcid) == example["descriptor_cid"]
    descriptor = Descriptor.from_block(dcid, ddata)
    assert descriptor.to_dag() == descriptor_value
    Package(descriptor=descriptor, platform=platform)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_example_is_order_insensitive(path: Path) -> None:
    """Reversing every flag list of distinct groups gives the same CIDs."""
    example = _load(path)
    facts = dict(example["facts"])
    for key in ("use", "iuse", "iuse_effective"):
        facts[key] = " ".join(reversed(facts[key].split()))
    package = normalize(BuildFacts(**facts), host_target=example["host_target"])
    assert str(package.descriptor.cid) == example["descriptor_cid"]


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_refused_example(path: Path) -> None:
    example = _load(path)
    error_class = getattr(errors, example["error"]["class"])
    with pytest.raises(error_class, match=None) as info:
        normalize(BuildFacts(**example["facts"]), host_target=example["host_target"])
    assert example["error"]["message"] in info.value.message
    if "hint" in example["error"]:
        assert example["error"]["hint"] in (info.value.hint or "")
