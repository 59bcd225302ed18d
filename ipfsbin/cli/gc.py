"""``ipfsbin gc``: keep what this host needs, unpin the rest, run Kubo's repo GC.

Registered as a top-level command by ``ipfsbin.cli.main``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.config import load_config, parse_size
from ipfsbin.errors import ConfigError
from ipfsbin.gc import collect_garbage
from ipfsbin.host.profile import read_host
from ipfsbin.kubo.daemon import connect
from ipfsbin.subscribe.follower import Follower

__all__ = ["gc"]


def _size(n: int | None) -> str:
    if n is None:
        return "unknown"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _render(r: dict[str, Any]) -> str:
    kept: dict[str, list[dict[str, Any]]] = {}
    for item in r["kept"]:
        kept.setdefault(item["why"], []).append(item)
    lines = [
        f"kept: {r['head_blocks']} blocks of the followed heads, "
        f"{r['metadata_blocks']} manifests and their descriptors and attestations"
    ]
    for why in ("pin", "prefetch", "installed"):
        items = kept.get(why, [])
        lines.append(f"kept: {len(items)} {why} package(s), {_size(sum(i['size'] for i in items))}")
    for holder, count in sorted(r["published"].items()):
        lines.append(f"kept: {count} pin(s) of {holder} (published here)")
    for item in r["dropped"]:
        lines.append(f"dropped for --keep-size: {item['cpv']} ({_size(item['size'])})")
    for item in r["released_pins"]:
        lines.append(f"unpinned: {item['cpv']} (no followed head lists it)")
    for item in r["released_prefetched"]:
        lines.append(f"unpinned: {item['cpv']} (prefetched; installed or superseded)")
    if r["leftovers"]:
        lines.append(f"unpinned: {r['leftovers']} blocks left by unfinished syncs")
    if r["keep_size"] is not None and r["kept_bytes"] > r["keep_size"]:
        lines.append(
            f"warning: pins and prefetched packages alone take {_size(r['kept_bytes'])}, "
            f"over --keep-size {_size(r['keep_size'])}"
        )
    if r["dry_run"]:
        lines.append(f"dry run: nothing unpinned or removed; repo is {_size(r['repo_before'])}")
    else:
        lines.append(
            f"freed {_size(r['freed_bytes'])} ({r['removed_blocks']} blocks): repo "
            f"{_size(r['repo_before'])} -> {_size(r['repo_after'])}"
        )
    return "\n".join(lines)


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be kept and unpinned; change nothing.")
    ] = False,
    keep_size: Annotated[
        str | None,
        typer.Option(
            "--keep-size",
            help="Budget for kept packages (500M, 2G, …); the least recently requested "
            "installed packages are dropped first (default: gc.keep_size).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Keep what the followed heads, pins, prefetches and installed packages need; free the rest."""
    config = load_config()
    try:
        budget = config.gc.keep_size if keep_size is None else parse_size(keep_size, "--keep-size")
    except ConfigError as exc:
        raise typer.BadParameter(exc.message) from exc
    host = read_host(target=config.target)

    def waiting() -> None:
        sys.stderr.write("ipfsbin: waiting for a sync or prefetch in flight to finish\n")

    with Follower() as follower, connect() as client:
        report = collect_garbage(
            client,
            follower,
            host,
            config.policy,
            keep_size=budget,
            dry_run=dry_run,
            on_wait=waiting,
        )
    emit(report.to_json(), as_json, _render)
