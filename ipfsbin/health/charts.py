"""The weather and doctor's findings for people: rich in a terminal, SVG on the page.

The terminal view uses rich (which typer brings); the page's charts are SVG
made here on the server, so the page needs no script and reaches nothing
outside this host.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from html import escape
from typing import Final

from rich.bar import Bar
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ipfsbin.health.findings import Report
from ipfsbin.health.weather import Weather

__all__ = ["render_report", "render_weather", "svg_bars"]

_MARKS: Final = {"ok": "ok", "info": "--", "warn": "!!", "fail": "XX"}
_STYLES: Final = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "bold red"}


def _to_text(
    renderable: RenderableType, *, color: bool, width: int, soft_wrap: bool = False
) -> str:
    out = io.StringIO()
    console = Console(
        file=out, width=width, force_terminal=color, no_color=not color, highlight=False
    )
    console.print(renderable, soft_wrap=soft_wrap)
    return out.getvalue()


def _bar_table(title: str, rows: Sequence[tuple[str, int, int]], unit: str) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("", width=30)
    table.add_column("", justify="right", no_wrap=True)
    for label, value, total in rows:
        share = value / total if total else 0.0
        table.add_row(
            label,
            Bar(size=1.0, begin=0.0, end=share, width=30, color="green", bgcolor="grey23"),
            f"{value}/{total} {unit}",
        )
    return table


def render_weather(
    weather: Weather, *, display_missing: bool = False, color: bool = False, width: int = 100
) -> str:
    """``guix weather``'s summary, per-package lines, and charts by category and agreement."""
    parts: list[RenderableType] = [
        Text(
            f"{weather.percent:.1f}% binaries available "
            f"({weather.available} out of {weather.total})",
            style="bold",
        )
    ]
    packages = Table(box=None, pad_edge=False)
    for column in ("package", "binary", "builders", "providers", "dependents"):
        packages.add_column(column, justify="left" if column == "package" else "right")
    for p in weather.packages:
        packages.add_row(
            p.wanted.label,
            "yes" if p.available else "no",
            str(p.builders) if p.available else "-",
            p.providers_label,
            str(p.dependents),
        )
    parts.append(packages)
    parts.append(
        _bar_table(
            "coverage by category", [(c, a, t) for c, a, t in weather.by_category()], "available"
        )
    )
    available = max(weather.available, 1)
    parts.append(
        _bar_table(
            "agreeing builders (available packages)",
            [(f"{b} builder{'s' if b != 1 else ''}", n, available) for b, n in weather.agreement()],
            "packages",
        )
    )
    if display_missing:
        missing = weather.missing()
        lines = Table(title=f"{len(missing)} missing, most depended-on first", box=None)
        lines.add_column("package")
        lines.add_column("dependents", justify="right")
        lines.add_column("why the builds that exist are refused")
        for p in missing:
            lines.add_row(p.wanted.label, str(p.dependents), "; ".join(p.refusals) or "no build")
        parts.append(lines)
    return _to_text(Group(*parts), color=color, width=width)


def render_report(report: Report, *, color: bool = False, width: int = 100) -> str:
    """One line per finding, worst first, each wrong one followed by its fix."""
    text = Text()
    for f in report.worst_first():
        text.append(f"[{_MARKS[f.status]}] ", style=_STYLES[f.status])
        text.append(f"{f.check}: {f.message}\n")
        if f.fix and f.wrong:
            text.append(f"     fix: {f.fix}\n", style="dim")
    text.append("nothing is wrong" if report.ok else "something is wrong (see fix lines)")
    # long lines stay whole, so a fix command can be copied as it is
    return _to_text(text, color=color, width=width, soft_wrap=True)


def svg_bars(title: str, rows: Sequence[tuple[str, int, int]], *, width: int = 480) -> str:
    """A horizontal bar chart of (label, value, total) rows as inline SVG, its text selectable."""
    line, label_w, bar_w = 22, 140, width - 140 - 90
    height = line * (len(rows) + 1) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value, total) in enumerate(rows):
        y = line * (i + 1) + 6
        share = value / total if total else 0.0
        parts += [
            f'<text x="0" y="{y + 14}">{escape(label)}</text>',
            f'<rect x="{label_w}" y="{y + 2}" width="{bar_w}" height="15" fill="#ddd"/>',
            f'<rect x="{label_w}" y="{y + 2}" width="{bar_w * share:.1f}" height="15" '
            f'fill="#2a7"/>',
            f'<text x="{label_w + bar_w + 6}" y="{y + 14}">{value}/{total}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)
