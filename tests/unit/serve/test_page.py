"""The page at ``/``: every section present, every value escaped, no script."""

from __future__ import annotations

from typing import Any

from ipfsbin.health.findings import Finding, Report
from ipfsbin.health.weather import PackageWeather, Wanted, Weather
from ipfsbin.serve.page import PageHealth, render_page

STATUS: dict[str, Any] = {
    "heads": [
        {
            "name": "k51<b>x",
            "url_path": "/k51<b>x/",
            "height": 4,
            "head": "bafyhead",
            "accepted_age_seconds": 12.5,
            "offered": 3,
            "stale": None,
            "last_error": None,
        }
    ],
    "catalog": {"offers": 3},
    "downloads": {
        "served": 1,
        "failed": 1,
        "active": 0,
        "recent": [{"cpv": "app-misc/foo-1", "bytes": 120}],
        "failures": [{"cpv": "app-misc/bad-1", "error": "TrustError: sha256 <mismatch>"}],
    },
}


def test_page_sections_and_escaping() -> None:
    missing = PackageWeather(
        wanted=Wanted(cp="dev-libs/gone", cpv="dev-libs/gone-3"),
        offer=None,
        builders=0,
        providers=None,
        dependents=2,
        refusals=("use: built with USE qux, this host has -qux",),
    )
    health = PageHealth(
        weather=Weather(packages=(missing,)),
        weather_error=None,
        report=Report.of([Finding(check="disk", status="fail", message="full", fix="ipfs gc")]),
        computed_at=0.0,
    )
    page = render_page(STATUS, health)
    assert "<script" not in page and "src=" not in page and "<link" not in page
    assert "k51&lt;b&gt;x" in page and "k51<b>x" not in page
    assert "<p id='coverage'>0.0% binaries available (0 out of 1)</p>" in page
    assert "dev-libs/gone-3</code> (2 dependents): use: built with USE qux" in page
    assert "sha256 &lt;mismatch&gt;" in page and "app-misc/foo-1" in page
    assert "<code>fix: ipfs gc</code>" in page and "something is wrong" in page


def test_page_without_health_figures_still_lists_heads() -> None:
    page = render_page(STATUS, None)
    assert "Followed indexes" in page and "Weather" not in page
