"""The page at ``/`` of ``ipfsbin serve``: heads, weather with charts, installs, refusals, doctor.

Rendered on the server as plain HTML with inline SVG charts
(:func:`ipfsbin.health.charts.svg_bars`): no script, nothing fetched from
anywhere else. The weather and doctor's findings are computed at most once
per ``ttl`` seconds (providers are looked up on the network, bounded in
time) and the page shows when they were.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from typing import Any

from ipfsbin.catalog.cache import BuildCache
from ipfsbin.config import ClientConfig
from ipfsbin.errors import IpfsbinError
from ipfsbin.health.charts import svg_bars
from ipfsbin.health.findings import Report
from ipfsbin.health.gather import doctor_here, weather_of_catalog
from ipfsbin.health.weather import Weather
from ipfsbin.kubo.client import KuboClient
from ipfsbin.serve.publisher import Publisher

__all__ = ["HealthView", "PageHealth", "render_page"]

_STYLE = """
body{font-family:sans-serif;margin:1.5em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;
text-align:left;vertical-align:top}.ok{color:#176}.info{color:#246}.warn{color:#a60}
.fail{color:#b00;font-weight:bold}#coverage{font-size:1.6em;font-weight:bold}
code{font-size:.9em}svg{font-size:13px;margin-right:2em}
"""


@dataclass(frozen=True, kw_only=True)
class PageHealth:
    weather: Weather | None
    weather_error: str | None
    report: Report
    computed_at: float


class HealthView:
    """Computes the weather and doctor's findings for the page, at most once per ``ttl``."""

    def __init__(
        self,
        publisher: Publisher,
        client: KuboClient | None,
        config: ClientConfig,
        *,
        ttl: float = 30.0,
        provider_timeout: timedelta = timedelta(seconds=5),
        allow_stale: bool = False,
    ) -> None:
        self.publisher = publisher
        self.client = client
        self.config = config
        self.ttl = ttl
        self.provider_timeout = provider_timeout
        self.allow_stale = allow_stale
        self._lock = threading.Lock()
        self._last: PageHealth | None = None
        self._built_for = 0.0

    def current(self) -> PageHealth:
        with self._lock:
            snap = self.publisher.snapshot
            last = self._last
            if last is not None and time.time() - last.computed_at < self.ttl:
                if self._built_for == snap.built_at:
                    return last
            self._last = self._compute()
            self._built_for = snap.built_at
            return self._last

    def _compute(self) -> PageHealth:
        snap = self.publisher.snapshot
        weather: Weather | None = None
        error: str | None = None
        if snap.host is None:
            error = "the catalog is not built yet"
        else:
            try:
                weather = weather_of_catalog(
                    (),
                    catalog=snap.catalog,
                    heads=[s.head for s in snap.catalog.heads],
                    host=snap.host,
                    config=self.config,
                    # its own cache: the publisher's thread mutates the other one
                    cache=BuildCache(self.publisher.cache.store),
                    client=self.client,
                    provider_timeout=self.provider_timeout,
                    allow_stale=self.allow_stale,
                )
            except IpfsbinError as exc:
                error = exc.message
        report = doctor_here(self.config, shim_is_self=True)
        return PageHealth(
            weather=weather, weather_error=error, report=report, computed_at=time.time()
        )


def _heads(data: dict[str, Any]) -> str:
    rows = "".join(
        "<tr><td><a href='{p}Packages'><code>{n}</code></a></td><td>{h}</td><td><code>{c}</code>"
        "</td><td>{a}</td><td>{o}</td><td>{s}</td></tr>".format(
            p=escape(h["url_path"]),
            n=escape(h["name"]),
            h=h["height"],
            c=escape(h["head"] or "-"),
            a="-"
            if h["accepted_age_seconds"] is None
            else f"{h['accepted_age_seconds']:.0f} s ago",
            o=h["offered"],
            s=escape(h["stale"] or h["last_error"] or "ok"),
        )
        for h in data["heads"]
    )
    return (
        "<h2>Followed indexes</h2><table><tr><th>index</th><th>height</th><th>head</th>"
        f"<th>accepted</th><th>packages offered</th><th>state</th></tr>{rows}</table>"
        f"<p>catalog: {data['catalog']['offers']} offers</p>"
    )


def _weather(health: PageHealth) -> str:
    w = health.weather
    if w is None:
        return f"<h2>Weather</h2><p class='warn'>{escape(health.weather_error or '')}</p>"
    charts = svg_bars("coverage by category", w.by_category()) + svg_bars(
        "agreeing builders",
        [(f"{b} builder{'s' if b != 1 else ''}", n, max(w.available, 1)) for b, n in w.agreement()],
    )
    rows = "".join(
        f"<tr><td>{escape(p.wanted.label)}</td><td>{'yes' if p.available else 'no'}</td>"
        f"<td>{p.builders if p.available else '-'}</td>"
        f"<td>{p.providers_label}</td><td>{p.dependents}</td></tr>"
        for p in w.packages
    )
    return (
        "<h2>Weather for this host</h2>"
        f"<p id='coverage'>{w.percent:.1f}% binaries available "
        f"({w.available} out of {w.total})</p><div>{charts}</div>"
        "<table><tr><th>package</th><th>binary</th><th>agreeing builders</th>"
        f"<th>providers</th><th>dependents</th></tr>{rows}</table>"
    )


def _installs_and_refusals(data: dict[str, Any], health: PageHealth) -> str:
    dl = data["downloads"]
    installs = "".join(
        f"<li><code>{escape(r['cpv'])}</code> ({r.get('bytes', 0)} bytes)</li>"
        for r in reversed(dl["recent"])
    )
    failures = "".join(
        f"<li><code>{escape(r['cpv'])}</code>: {escape(r.get('error', ''))}</li>"
        for r in reversed(dl["failures"])
    )
    missing = [] if health.weather is None else health.weather.missing()
    refused = "".join(
        f"<li><code>{escape(p.wanted.label)}</code> ({p.dependents} dependents): "
        + escape("; ".join(p.refusals) or "no build in any followed index")
        + "</li>"
        for p in missing
    )
    return (
        f"<h2>Recent installs</h2><p>{dl['served']} served, {dl['failed']} failed, "
        f"{dl['active']} active</p><ul>{installs or '<li>none yet</li>'}</ul>"
        f"<h2>Refusals</h2><h3>Downloads refused</h3><ul>{failures or '<li>none</li>'}</ul>"
        f"<h3>Installed packages without a binary, and why</h3>"
        f"<ul id='refusals'>{refused or '<li>none</li>'}</ul>"
    )


def _doctor(report: Report) -> str:
    items = "".join(
        f"<li class='{f.status}'>[{f.status}] {escape(f.check)}: {escape(f.message)}"
        + (f"<br><code>fix: {escape(f.fix)}</code>" if f.fix and f.wrong else "")
        + "</li>"
        for f in report.worst_first()
    )
    verdict = "nothing is wrong" if report.ok else "something is wrong"
    return f"<h2>Doctor</h2><p>{verdict}</p><ul id='doctor'>{items}</ul>"


def render_page(data: dict[str, Any], health: PageHealth | None) -> str:
    """The whole page from ``/status``'s data and the health figures (None: not computed)."""
    body = _heads(data)
    if health is not None:
        body += _weather(health) + _installs_and_refusals(data, health) + _doctor(health.report)
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(health.computed_at))
        body += f"<p>weather and doctor as of {when}</p>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>ipfsbin binhost</title><style>{_STYLE}</style></head><body>"
        f"<h1>ipfsbin local binhost</h1>{body}"
        "<p><a href='/status'>status as JSON</a></p></body></html>"
    )
