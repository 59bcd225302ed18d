"""Which builds `ipfsbin pin` selects, and the pin list file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipfsbin.catalog import BuildCache, Catalog, build_catalog
from ipfsbin.catalog.pins import PinBook, PinnedBuild, select_offers
from ipfsbin.config import ClientPolicy
from tests.unit.catalog.catalog_helpers import NOW, V3, Index, host_info


def _catalog(index: Index) -> Catalog:
    return build_catalog(
        [index.head()], host=host_info(), policy=ClientPolicy(), cache=BuildCache(index.store),
        now=NOW,
    )  # fmt: skip


def _index() -> Index:
    index = Index()
    index.add("foo", "app-misc/foo-1")
    index.add("foo-v3", "app-misc/foo-1", V3)
    index.add("bar", "dev-libs/bar-2")
    index.add("baz", "dev-libs/baz-3")
    return index


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (["app-misc/foo"], ["app-misc/foo-1"]),
        (["=dev-libs/bar-2"], ["dev-libs/bar-2"]),
        (["=dev-libs/bar-3"], []),
        (["dev-libs"], ["dev-libs/bar-2", "dev-libs/baz-3"]),
        (["dev-libs/*"], ["dev-libs/bar-2", "dev-libs/baz-3"]),
        (["@world"], ["dev-libs/baz-3"]),
        (["@installed"], ["dev-libs/bar-2"]),
    ],
)
def test_selectors(selectors: list[str], expected: list[str]) -> None:
    index = _index()
    host = host_info(world=("dev-libs/baz:0",), installed={"dev-libs/bar": {"0": "0"}})
    catalog = _catalog(index)
    chosen = select_offers(catalog, selectors, host)
    assert [o.cpv for o in chosen] == expected


def test_first_choice_only_and_all_compatible() -> None:
    index = _index()
    catalog = _catalog(index)
    chosen = select_offers(catalog, [], host_info(), all_compatible=True)
    assert [o.cpv for o in chosen] == ["app-misc/foo-1", "dev-libs/bar-2", "dev-libs/baz-3"]
    (foo,) = [o for o in chosen if o.cpv == "app-misc/foo-1"]
    assert foo.build.manifest_cid == index.manifests["foo-v3"] and foo.rank == 1


def test_bad_selector() -> None:
    index = _index()
    catalog = _catalog(index)
    with pytest.raises(ValueError, match="is not a category"):
        select_offers(catalog, ["=oops"], host_info())


def test_pin_book_round_trip(tmp_path: Path) -> None:
    index = _index()
    build = PinnedBuild(
        manifest=index.manifests["foo"],
        binpkg=index.manifests["bar"],
        cpv="app-misc/foo-1",
        subscription="k51test",
        size=7,
    )
    with PinBook(tmp_path / "pins.sqlite") as book:
        book.add(build)
        book.add(build)
    with PinBook(tmp_path / "pins.sqlite") as book:
        assert book.all() == [build]
        book.remove(build.manifest)
        assert book.all() == []
