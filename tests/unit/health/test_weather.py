"""The weather's figures from an in-memory index: coverage, builders, ranking of the missing."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType

import pytest

from ipfsbin.catalog import BuildCache, Candidate, build_catalog, judge_packages
from ipfsbin.codec.cid import CID
from ipfsbin.config import ClientPolicy
from ipfsbin.health.charts import render_weather, svg_bars
from ipfsbin.health.weather import Wanted, Weather, select_wanted, weigh
from ipfsbin.host.installed import InstalledSet
from tests.unit.catalog.catalog_helpers import MUSL, NOW, Index, host_info
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, BUILDER_Y

INSTALLED = InstalledSet(
    cpvs=("app-misc/foo-1", "app-misc/bar-2", "dev-libs/libfoo-1", "dev-libs/gone-3"),
    world=("app-misc/foo",),
    dependents=MappingProxyType({"dev-libs/gone": 2, "dev-libs/libfoo": 1}),
    world_cpvs=("app-misc/foo-1",),
)


def _weather(index: Index, wanted: Sequence[Wanted], asked: list[CID]) -> Weather:
    heads = [index.head()]
    cache = BuildCache(index.store)
    policy = ClientPolicy()
    catalog = build_catalog(heads, host=host_info(), policy=policy, cache=cache, now=NOW)

    def judge(cps: Collection[str]) -> list[Candidate]:
        return judge_packages(cps, heads, host=host_info(), policy=policy, cache=cache, now=NOW)

    def providers(cids: Sequence[CID]) -> Mapping[CID, int | None]:
        asked.extend(cids)
        return {cid: 3 for cid in cids}

    offers = [o for group in catalog.offers.values() for o in group]
    return weigh(
        wanted, offers=offers, dependents=INSTALLED.dependents, judge=judge, providers=providers
    )


def test_figures_of_the_installed_set() -> None:
    index = Index()
    index.add("foo", "app-misc/foo-1", builders=(BUILDER_X, BUILDER_Y))
    index.add("bar-other-version", "app-misc/bar-1")
    index.add("libfoo", "dev-libs/libfoo-1")
    index.add("gone-musl", "dev-libs/gone-3", MUSL)
    asked: list[CID] = []
    weather = _weather(index, select_wanted([], INSTALLED), asked)
    assert (weather.available, weather.total, weather.percent) == (2, 4, 50.0)
    assert not weather.complete
    rows = {p.wanted.label: p for p in weather.packages}
    assert (rows["app-misc/foo-1"].builders, rows["app-misc/foo-1"].providers) == (2, 3)
    assert rows["dev-libs/libfoo-1"].builders == 1
    # providers are asked for the offered builds only, once each
    assert len(asked) == 2 == len(set(asked))
    assert [p.wanted.label for p in weather.missing()] == ["dev-libs/gone-3", "app-misc/bar-2"]
    gone = rows["dev-libs/gone-3"]
    assert gone.dependents == 2 and gone.providers is None
    assert any(r.startswith("chost: ") for r in gone.refusals), gone.refusals
    assert rows["app-misc/bar-2"].refusals == ()  # only another version exists
    assert weather.by_category() == [("app-misc", 1, 2), ("dev-libs", 1, 2)]
    assert weather.agreement() == [(1, 1), (2, 1)]
    data = weather.to_json()
    assert data["percent"] == 50.0 and data["missing"] == ["dev-libs/gone-3", "app-misc/bar-2"]


def test_atoms_world_and_absent_packages() -> None:
    index = Index()
    index.add("foo", "app-misc/foo-1")
    index.add("new", "app-misc/new-5")
    wanted = select_wanted(["@world", "app-misc/new", "=app-misc/other-2"], INSTALLED)
    assert [(w.cp, w.cpv) for w in wanted] == [
        ("app-misc/foo", "app-misc/foo-1"),
        ("app-misc/new", None),
        ("app-misc/other", "app-misc/other-2"),
    ]
    weather = _weather(index, wanted, [])
    assert [p.available for p in weather.packages] == [True, True, False]
    with pytest.raises(ValueError, match="not a Portage atom"):
        select_wanted(["not an atom"], INSTALLED)


def test_empty_selection_is_complete() -> None:
    weather = Weather(packages=())
    assert weather.complete and weather.percent == 100.0


def test_terminal_and_svg_charts_show_the_figures() -> None:
    index = Index()
    index.add("foo", "app-misc/foo-1")
    weather = _weather(index, select_wanted([], INSTALLED), [])
    text = render_weather(weather, display_missing=True)
    assert text.startswith("25.0% binaries available (1 out of 4)")
    assert "coverage by category" in text and "1/2 available" in text
    assert "3 missing, most depended-on first" in text and "no build" in text
    svg = svg_bars("coverage <by> category", weather.by_category())
    assert svg.startswith("<svg") and "coverage &lt;by&gt; category" in svg
    assert ">1/2</text>" in svg and ">0/2</text>" in svg
