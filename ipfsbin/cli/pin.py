"""``ipfsbin pin`` and ``unpin``: keep fitting binaries in Kubo so this host seeds them.

Registered as top-level commands by ``ipfsbin.cli.main``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ipfsbin.catalog.current import current_catalog
from ipfsbin.catalog.pins import PinBook, pin_offers, select_offers, unpin_selected
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.config import load_config
from ipfsbin.host.profile import read_host
from ipfsbin.kubo.daemon import connect
from ipfsbin.subscribe.follower import Follower

__all__ = ["pin", "unpin"]


def _render_pins(result: dict[str, Any]) -> str:
    lines = []
    for item in result["builds"]:
        mark = "pinned" if item.get("ok", True) else "FAILED"
        tail = f"  ({item['error']})" if item.get("error") else ""
        lines.append(f"{mark:7} {item['cpv']}  {item['size']} bytes  {item['binpkg']}{tail}")
    lines.append(result["summary"])
    return "\n".join(lines)


def _selectors(selectors: list[str] | None, all_compatible: bool) -> list[str]:
    if not selectors and not all_compatible:
        raise typer.BadParameter("name what to pin: @world, @installed, an atom, a category")
    return list(selectors or [])


def pin(
    selectors: Annotated[
        list[str] | None,
        typer.Argument(
            help="@world, @installed, category/package, =category/package-1.0, category"
        ),
    ] = None,
    all_compatible: Annotated[
        bool, typer.Option("--all-compatible", help="Every build the catalog offers this host.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch, verify and pin the fitting binaries: this host seeds them and installs offline."""
    from rich.progress import Progress

    wanted = _selectors(selectors, all_compatible)
    config = load_config()
    info = read_host(target=config.target)
    with Follower() as follower, connect() as client, PinBook() as book:
        catalog = current_catalog(follower, client, host=info, policy=config.policy)
        try:
            offers = select_offers(catalog, wanted, info, all_compatible=all_compatible)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        with Progress(disable=as_json or not sys.stderr.isatty(), transient=True) as bar:
            task = bar.add_task("pinning", total=len(offers))
            outcomes = pin_offers(client, book, offers, progress=lambda _: bar.advance(task))
    done = [o for o in outcomes if o.ok]
    size = sum(o.build.size for o in done)
    result = {
        "builds": [o.to_json() for o in outcomes],
        "pinned": len(done),
        "failed": len(outcomes) - len(done),
        "bytes": size,
        "summary": f"{len(done)} package(s), {size} bytes pinned"
        + (f"; {len(outcomes) - len(done)} failed" if len(done) != len(outcomes) else ""),
    }
    emit(result, as_json, _render_pins)
    if len(done) != len(outcomes):
        raise typer.Exit(1)


def unpin(
    selectors: Annotated[list[str], typer.Argument(help="What `ipfsbin pin` was given.")],
    as_json: JsonOpt = False,
) -> None:
    """Unpin the pinned binaries a selector names."""
    config = load_config()
    info = read_host(target=config.target)
    with connect() as client, PinBook() as book:
        try:
            released = unpin_selected(client, book, selectors, info)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    size = sum(b.size for b in released)
    result = {
        "builds": [b.to_json() for b in released],
        "unpinned": len(released),
        "bytes": size,
        "summary": f"{len(released)} package(s), {size} bytes unpinned",
    }
    emit(result, as_json, _render_pins)
