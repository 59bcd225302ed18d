"""schema/health.md's examples carry exactly the fields the reports write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ipfsbin.health.findings import Finding, Report
from ipfsbin.health.weather import PackageWeather, Wanted, Weather

DOC = (Path(__file__).parents[3] / "schema/health.md").read_text()


def _examples() -> list[Any]:
    return [json.loads(block.split("```", 1)[0]) for block in DOC.split("```json\n")[1:]]


def test_doctor_example_has_the_report_fields() -> None:
    doctor, _ = _examples()
    report = Report.of([Finding(check="kubo", status="ok", message="m")])
    assert set(doctor) == set(report.to_json())
    assert set(doctor["findings"][0]) == set(report.findings[0].to_json())
    assert doctor["ok"] is Report.of(Finding(**f) for f in doctor["findings"]).ok


def test_weather_example_has_the_weather_fields_and_consistent_figures() -> None:
    _, weather = _examples()
    missing = PackageWeather(
        wanted=Wanted(cp="app-misc/bar", cpv="app-misc/bar-2"),
        offer=None,
        builders=0,
        providers=None,
        dependents=1,
    )
    data = Weather(packages=(missing,)).to_json()
    assert set(weather) == set(data)
    assert set(weather["packages"][0]) == set(data["packages"][0])  # type: ignore[index]
    available = [p for p in weather["packages"] if p["available"]]
    assert weather["available"] == len(available) and weather["total"] == 3
    assert weather["percent"] == round(100 * 2 / 3, 1)
    assert weather["missing"] == [p["package"] for p in weather["packages"] if not p["available"]]
