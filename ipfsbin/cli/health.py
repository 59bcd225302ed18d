"""``ipfsbin doctor`` and ``ipfsbin weather``: is this node healthy, how well is it covered.

Exit codes: 0 when nothing is wrong (doctor) or every package has a
binary (weather); 1 otherwise, and for errors; 2 for a bad command line.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console

from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.config import load_config
from ipfsbin.health.charts import render_report, render_weather
from ipfsbin.health.gather import doctor_here, weather_here
from ipfsbin.health.weather import check_atoms
from ipfsbin.host.profile import read_host

__all__ = ["doctor", "weather"]


def doctor(as_json: JsonOpt = False) -> None:
    """Check Kubo, the network, the followed heads, the binhost, Portage and disk space."""
    report = doctor_here(load_config())
    emit(report.to_json(), as_json, lambda _: render_report(report, color=sys.stdout.isatty()))
    if not report.ok:
        raise typer.Exit(1)


def weather(
    atoms: Annotated[
        list[str] | None,
        typer.Argument(help="Atoms or @world (default: every installed package).", metavar="ATOM"),
    ] = None,
    display_missing: Annotated[
        bool,
        typer.Option("--display-missing", help="List missing packages, most depended-on first."),
    ] = False,
    provider_timeout: Annotated[
        float,
        typer.Option("--provider-timeout", help="Seconds to look for each package's providers."),
    ] = 10.0,
    allow_stale: Annotated[
        bool, typer.Option("--allow-stale", help="Count expired heads as if they were fresh.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """How many packages have a fitting binary in the followed indexes (x% available, a of b)."""
    if provider_timeout <= 0:
        raise typer.BadParameter("must be above 0", param_hint="--provider-timeout")
    try:
        check_atoms(atoms or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="ATOM") from exc
    config = load_config()
    # the catalog and the provider searches take seconds: say so on a terminal
    waiting = Console(stderr=True).status("weighing the followed indexes and asking for providers…")
    with waiting if sys.stderr.isatty() else nullcontext():
        result = weather_here(
            atoms or [],
            config=config,
            host=read_host(target=config.target),
            provider_timeout=timedelta(seconds=provider_timeout),
            allow_stale=allow_stale,
        )
    emit(
        result.to_json(),
        as_json,
        lambda _: render_weather(
            result, display_missing=display_missing, color=sys.stdout.isatty()
        ),
    )
    if not result.complete:
        raise typer.Exit(1)
