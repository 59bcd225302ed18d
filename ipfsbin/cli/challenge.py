"""``ipfsbin challenge``, and the challenge report both it and ``index pull`` print.

The text follows ``guix challenge``: each differing item with every hash
known for it, then how many items were identical, differed, or were
inconclusive.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from ipfsbin.builder.local import local_builds
from ipfsbin.catalog import parse_atom, read_heads
from ipfsbin.catalog.challenge import challenge_host
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.descriptor.cpv import split_cpv
from ipfsbin.host.facts import detect_host_facts
from ipfsbin.host.profile import installed_binaries, portage_pkgdir
from ipfsbin.kubo.daemon import connect
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe.follower import Follower, require_subscriptions

__all__ = ["challenge", "render_challenge"]


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0.0%"


def render_challenge(report: dict[str, Any], *, verbose: bool = False) -> str:
    """The text of a challenge report (its ``to_json`` form): differing items, then a summary.

    ``verbose`` lists the identical and inconclusive items too.
    """
    lines: list[str] = []
    for item in report["items"]:
        verdict = item["verdict"]
        if verdict != "differing" and not verbose:
            continue
        heading = {
            "differing": "contents differ",
            "identical": "contents identical",
            "inconclusive": "inconclusive",
        }[verdict]
        lines.append(f"{item['item']} {heading}:")
        if item["key"]:
            lines.append(f"  build: {item['key']}")
        if item["local"] is not None:
            lines.append(f"  local hash: {item['local']}")
        for builder in item["builders"]:
            lines.append(f"  {builder['builder']}: {builder['sha256']}")
        if not item["builders"]:
            lines.append("  no builder attests this build")
        if item["note"]:
            lines.append(f"  ({item['note']})")
    summary = report["summary"]
    total = summary["analyzed"]
    if lines:
        lines.append("")
    lines.append(f"{total} item{'s were' if total != 1 else ' was'} analyzed:")
    for key, words in (
        ("identical", "were identical"),
        ("differing", "differed"),
        ("inconclusive", "were inconclusive"),
    ):
        lines.append(f"  - {summary[key]} ({_percent(summary[key], total)}) {words}")
    return "\n".join(lines)


def _wanted(cpv: str, atoms: list[tuple[str, str, str | None]]) -> bool:
    if not atoms:
        return True
    category, package, version = split_cpv(cpv)
    return any((c, p) == (category, package) and v in (None, version) for c, p, v in atoms)


def challenge(
    atoms: Annotated[
        list[str] | None,
        typer.Argument(help="category/package or =category/package-version (default: all)."),
    ] = None,
    pkgdir: Annotated[
        Path | None,
        typer.Option("--pkgdir", help="Where this host's binpkgs are (default: Portage's PKGDIR)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="List identical and inconclusive builds too.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare this host's own builds with what builders attested for the same descriptor.

    For each binpkg in PKGDIR, and each package installed from a binary (found
    in the followed indexes by the MD5 Portage recorded), the sha256 of its
    bytes against each builder's for the same descriptor, as `guix challenge`
    prints it. Exit code 2 when any build differs.
    """
    try:
        wanted = [parse_atom(atom) for atom in atoms or ()]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    directory = pkgdir if pkgdir is not None else portage_pkgdir()
    builds, skipped = local_builds(
        directory, detect_host_facts(), wanted=lambda cpv: _wanted(cpv, wanted)
    )
    installed = {cpv: md5 for cpv, md5 in installed_binaries().items() if _wanted(cpv, wanted)}
    with Follower() as follower, connect() as client:
        held = follower.held_blocks()
        report = challenge_host(
            builds,
            installed,
            read_heads(require_subscriptions(follower.state), held, freshness=follower.freshness),
            held=held,
            store=KuboBlockStore(client, offline=False, fetch_timeout=timedelta(seconds=30)),
        )
    result = {
        **report.to_json(),
        "pkgdir": str(directory),
        "skipped": [{"path": str(path), "reason": reason} for path, reason in skipped],
    }

    def render(r: dict[str, Any]) -> str:
        lines = [render_challenge(r, verbose=verbose)]
        lines += [f"skipped {s['path']}: {s['reason']}" for s in r["skipped"]]
        return "\n".join(lines)

    emit(result, as_json, render)
    raise typer.Exit(report.exit_code)
