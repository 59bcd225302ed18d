"""``ipfsbin index pull FEED…``: stage what builders' feeds say, under a policy."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ipfsbin.cli.challenge import render_challenge
from ipfsbin.cli.follow import parse_duration, stop_on_signal
from ipfsbin.cli.index._common import NameOpt, app, now, session
from ipfsbin.cli.output import JsonOpt, emit, print_error
from ipfsbin.errors import IpfsbinError
from ipfsbin.maintainer.pull import PullPolicy, PullResult, pull
from ipfsbin.subscribe.feeds import FeedMarks, read_feed
from ipfsbin.subscribe.follower import follow_forever


def _scope(index: str) -> str:
    return f"index:{index}"


def pull_once(
    feeds: list[str], policy: PullPolicy, index: str
) -> tuple[PullResult, list[tuple[str, IpfsbinError]]]:
    """Read every feed after this index's marks, stage, then move the marks.

    A feed that cannot be read or is refused (dropped or changed entries, bad
    signatures) is left out with its error; the others are pulled.
    """
    marks = FeedMarks()
    scope = _scope(index)
    refused: list[tuple[str, IpfsbinError]] = []
    with session(index) as (workspace, client, store):
        updates = []
        for feed in feeds:
            try:
                updates.append(read_feed(client, feed, since=marks.get(scope, feed), now=now()))
            except IpfsbinError as exc:
                refused.append((feed, exc))
        result = pull(workspace, store, lambda cid: client.cat(cid), updates, policy)
    for update in updates:
        marks.record(scope, update)
    return result, refused


def _report(result: PullResult, refused: list[tuple[str, IpfsbinError]]) -> dict[str, Any]:
    for _, exc in refused:
        print_error(exc.message, exc.hint)
    report = result.to_json()
    report["refused"] = [{"feed": feed, "error": exc.message} for feed, exc in refused]
    return report


def render_pull(r: dict[str, Any], verbose: bool = False) -> str:
    lines = []
    for feed in r["feeds"]:
        since = feed["previous_height"]
        start = "its start" if since is None else f"height {since}"
        lines.append(
            f"feed {feed['name']}: height {feed['height']}, {feed['added']} new since {start}"
        )
    for decision in r["decisions"]:
        lines.append(f"  {decision['action']:<9} {decision['cpv']}: {decision['reason']}")
    lines += ["", render_challenge(r["challenge"], verbose=verbose)]
    return "\n".join(lines)


@app.command("pull")
def pull_cmd(
    feeds: Annotated[list[str], typer.Argument(help="Builder feeds: their IPNS names (k51…).")],
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="TOML file with builders (a list of key IDs), min_builders (k) and "
            "on_disagreement (keep-both, majority or yank-and-flag).",
            dir_okay=False,
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep pulling every --interval until SIGTERM.")
    ] = False,
    interval: Annotated[
        str, typer.Option("--interval", help="Time between pulls with --follow.")
    ] = "5m",
    verbose: Annotated[
        bool, typer.Option("--verbose", help="List identical and inconclusive builds too.")
    ] = False,
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Verify builder feeds and stage the builds that pass the policy; report disagreements.

    Exit code 2 when builders disagree on a build's bytes (as `guix challenge`).
    Staged builds are committed with `ipfsbin index commit`.
    """
    chosen = PullPolicy() if policy is None else PullPolicy.from_file(policy)
    pause = parse_duration(interval).total_seconds()
    if not follow:
        result, refused = pull_once(feeds, chosen, name)
        emit(_report(result, refused), as_json, lambda r: render_pull(r, verbose))
        raise typer.Exit(1 if refused else result.exit_code)
    stop = stop_on_signal()

    def once() -> None:
        # a feed or network problem fails one round, not the service
        try:
            result, refused = pull_once(feeds, chosen, name)
        except IpfsbinError as exc:
            print_error(exc.message, exc.hint)
            return
        report = _report(result, refused)
        if as_json:
            sys.stdout.write(json.dumps(report, sort_keys=True) + "\n")
        elif result.decisions:
            sys.stdout.write(render_pull(report, verbose) + "\n")
        sys.stdout.flush()

    follow_forever(once, interval=pause, stop=stop)
