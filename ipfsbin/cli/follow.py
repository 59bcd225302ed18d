"""``ipfsbin subscribe``, ``unsubscribe``, ``sync`` and ``status``: following published indexes.

Registered as top-level commands by ``ipfsbin.cli.main``.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Annotated, Any

import typer

from ipfsbin.catalog.pins import PinnedBuild, prune_after_sync
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.codec.cid import CID
from ipfsbin.config import load_config
from ipfsbin.errors import CodecError, IpfsbinError
from ipfsbin.host.profile import read_host
from ipfsbin.kubo.daemon import connect
from ipfsbin.prefetch import Prefetcher, PrefetchOutcome, prefetch_round, read_prefetched
from ipfsbin.subscribe import (
    REPLICA_POLICIES,
    FollowConfig,
    Follower,
    ReplicaPolicy,
    Subscription,
    SyncResult,
)
from ipfsbin.subscribe.replica import Holding
from ipfsbin.trust.freshness import describe_span

__all__ = ["parse_duration", "status", "subscribe", "sync", "unsubscribe"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"5m"``, ``"48h"``, ``"1h30m"`` (Go-style, as Kubo writes them)."""
    compact = text.strip().replace(" ", "")
    pos = 0
    seconds = 0.0
    for match in _DURATION.finditer(compact):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(compact) or not compact or seconds <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 5m, 48h or 1h30m")
    return timedelta(seconds=seconds)


def _cid_option(text: str, what: str) -> CID:
    try:
        return CID.from_text(text.strip())
    except CodecError as exc:
        raise typer.BadParameter(f"{what}: {exc.message}") from exc


def _replica(text: str | None) -> ReplicaPolicy | None:
    if text is None:
        return None
    if text not in REPLICA_POLICIES:
        raise typer.BadParameter(f"{text!r} is not one of {', '.join(REPLICA_POLICIES)}")
    return text


ReplicaOpt = Annotated[
    str | None,
    typer.Option(
        "--replica",
        metavar="host|full",
        help="Keep the index entries of the platforms this host could use (host), or the "
        "whole index (full). Default: host.replica in the configuration (host).",
    ),
]


def _client(**options: Any) -> FollowConfig:
    """A client's follower: host-scoped replicas unless configured or asked otherwise."""
    config = load_config()
    return FollowConfig(
        default_replica=_replica(config.replica) or "host",
        host=lambda: read_host(target=config.target).fits_platform,
        **options,
    )


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def subscribe(
    name: Annotated[str, typer.Argument(help="IPNS name of the index (k51…).")],
    root: Annotated[
        str | None,
        typer.Option(
            "--root",
            help="Envelope CID of the trust root to start from (the root that "
            "`ipfsbin index status` prints).",
        ),
    ] = None,
    root_key: Annotated[
        str | None,
        typer.Option(
            "--root-key",
            help="Trust roots signed by this maintainer key (k51…): alone, the roots are "
            "found in the commits; with --root, that root must carry its signature.",
        ),
    ] = None,
    add_root: Annotated[
        str | None,
        typer.Option("--add-root", help="Envelope CID of the next trust root version (rotation)."),
    ] = None,
    replica: ReplicaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow an index: store its name and the trust root its commits are checked under."""
    policy = _replica(replica)
    with Follower() as follower:
        if add_root is not None:
            result = follower.add_root(name, _cid_option(add_root, "--add-root"))
            if policy is not None:
                follower.state.set_replica_policy(result.name, policy)
        else:
            root_cid = None if root is None else _cid_option(root, "--root")
            result = follower.subscribe(name, root=root_cid, root_key=root_key, replica=policy)
    emit(
        result.to_json(),
        as_json,
        lambda r: f"following {r['name']} under {r['pin']} (run `ipfsbin sync`)",
    )


def unsubscribe(
    name: Annotated[str, typer.Argument(help="IPNS name of the index.")],
    keep_pins: Annotated[
        bool,
        typer.Option(
            "--keep-pins",
            help="Do not unpin (or delete from the gateway block file) the blocks only this "
            "subscription held; only forget the subscription.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop following an index and release the blocks no other subscription holds."""
    with Follower() as follower:
        done = follower.unsubscribe(name, keep_pins=keep_pins)
    emit(done.to_json(), as_json, _render_unsubscribed)


def _render_unsubscribed(r: dict[str, Any]) -> str:
    text = f"no longer following {r['name']}"
    if r["kept_pins"]:
        return text + " (its blocks stay pinned)"
    text += f"; released {r['released']} blocks no other subscription holds"
    if r["kubo_skipped"]:
        text += " (from the gateway block file only: no Kubo node to unpin from)"
    return text


def _render_result(result: SyncResult) -> str:
    return "\n".join([_render_outcome(result), *(f"  warning: {w}" for w in result.warnings)])


def _render_outcome(result: SyncResult) -> str:
    if result.outcome == "accepted":
        before = "none" if result.previous_height is None else str(result.previous_height)
        text = (
            f"{result.name}: height {before} -> {result.height}, fetched "
            f"{result.blocks_fetched} blocks ({result.bytes_fetched} bytes) in "
            f"{result.seconds:.1f}s"
        )
        if result.via == "changeset":
            text += f"; rebuilt {result.blocks_written} index nodes locally from the changeset"
        elif result.fallback:
            text += f"; fetched index nodes ({result.fallback})"
        return text
    if result.outcome == "current":
        return f"{result.name}: up to date at height {result.height}"
    kept = "no head yet" if result.height is None else f"keeping height {result.height}"
    text = f"{result.name}: {result.outcome}: {result.error} ({kept})"
    if result.hint:
        text += f"\n  hint: {result.hint}"
    return text


def sync(
    gateway: Annotated[
        str | None,
        typer.Option("--gateway", help="Follow without a daemon, through this trustless gateway."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep syncing every --interval until SIGTERM.")
    ] = False,
    interval: Annotated[
        str, typer.Option("--interval", help="Time between rounds with --follow.")
    ] = "60s",
    timeout: Annotated[
        str, typer.Option("--timeout", help="How long to wait for a record or a block.")
    ] = "30s",
    deadline: Annotated[
        str,
        typer.Option(
            "--deadline",
            help="Most time one subscription's sync may spend on the network; then it fails "
            "and the next subscription is synced.",
        ),
    ] = "10m",
    allow_stale: Annotated[
        bool,
        typer.Option(
            "--allow-stale",
            help="Switch off the expiry check of commits and roots (freeze-attack protection); "
            "only to work offline on purpose.",
        ),
    ] = False,
    replica: ReplicaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every subscription once (or keep following) and move to newer verified heads."""
    config = _client(
        gateway=gateway,
        timeout=parse_duration(timeout),
        deadline=parse_duration(deadline),
        allow_stale=allow_stale,
        replica=_replica(replica),
    )
    pause = parse_duration(interval).total_seconds()
    with Follower(config) as follower:
        if not follow:
            results = follower.sync_all()
            _prune_pins(follower, results)
            emit([r.to_json() for r in results], as_json, _render_all(results))
            bad = any(r.outcome in ("refused", "failed") for r in results)
            raise typer.Exit(1 if bad else 0)
        _follow(follower, pause, as_json)


def _prune_pins(follower: Follower, results: list[SyncResult]) -> None:
    """User pins follow the index: a build yanked by a newly accepted head is unpinned."""
    if not any(r.outcome == "accepted" for r in results):
        return
    try:
        pruned = prune_after_sync(follower, connect)
    except IpfsbinError as exc:  # the sync itself succeeded; the pins are pruned next time
        sys.stderr.write(f"ipfsbin: warning: could not prune pins: {exc.message}\n")
        return
    for build in pruned:
        sys.stderr.write(f"ipfsbin: unpinned {build.cpv} ({build.binpkg}): no longer listed\n")


def _render_all(results: list[SyncResult]) -> Callable[[Any], str]:
    return lambda _: "\n".join(_render_result(r) for r in results)


def _report_prefetch(outcomes: list[PrefetchOutcome]) -> None:
    for outcome in outcomes:
        build = outcome.build
        if outcome.state == "ready":
            text = f"prefetched {build.cpv} ({build.size} bytes, {outcome.reason}): ready"
        else:
            text = f"prefetch of {build.cpv} {outcome.state}: {outcome.reason}"
        sys.stderr.write(f"ipfsbin: {text}\n")
    sys.stderr.flush()


def _prefetcher(follower: Follower) -> Prefetcher | None:
    """The background prefetch of ``sync --follow``, when the configuration turns it on."""
    config = load_config()
    if config.prefetch.mode == "off" or follower.config.gateway is not None:
        return None
    return Prefetcher(lambda: prefetch_round(config, connect), on_done=_report_prefetch)


def stop_on_signal() -> threading.Event:
    """An event SIGTERM and SIGINT set: a service loop ends its round and returns."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _follow(follower: Follower, pause: float, as_json: bool) -> None:
    stop = stop_on_signal()
    prefetcher = _prefetcher(follower)

    def show(results: list[SyncResult]) -> None:
        _prune_pins(follower, results)
        if prefetcher is not None and (
            prefetcher.rounds == 0 or any(r.outcome == "accepted" for r in results)
        ):
            prefetcher.request()  # in the background: the next sync never waits for it
        for result in results:
            if as_json:
                sys.stdout.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
            elif result.outcome != "current":
                sys.stdout.write(_render_result(result) + "\n")
            sys.stdout.flush()

    try:
        follower.follow(show, interval=pause, stop=stop)
    finally:
        if prefetcher is not None:
            prefetcher.stop()


def status(as_json: JsonOpt = False) -> None:
    """Subscriptions: accepted head and height, how much of the index is held and why."""
    with Follower(_client()) as follower:
        subs = follower.subscriptions()
        held = {h.name: h for h in follower.holdings()}
    prefetched: dict[str, list[PinnedBuild]] = {}
    for build in read_prefetched():
        prefetched.setdefault(build.subscription, []).append(build)
    now = time.time()
    emit(
        [
            {
                **s.to_json(now=now),
                "held": held[s.name].to_json(),
                "prefetched": [b.to_json() for b in prefetched.get(s.name, [])],
            }
            for s in subs
        ],
        as_json,
        lambda _: _render_status(subs, now, held, prefetched),
    )


def _render_status(
    subs: list[Subscription],
    now: float,
    held: Mapping[str, Holding],
    prefetched: Mapping[str, list[PinnedBuild]],
) -> str:
    if not subs:
        return "no subscriptions (add one with `ipfsbin subscribe NAME --root CID`)"
    lines = []
    for sub in subs:
        head = "none yet" if sub.head is None else f"{sub.head} (height {sub.height})"
        lines.append(sub.name)
        lines.append(f"  trust:    {sub.pin.describe()}")
        lines.append(f"  head:     {head}")
        lines += _render_expiry(sub, now)
        lines.append(f"  accepted: {_when(sub.accepted_at)}")
        lines.append(f"  checked:  {_when(sub.checked_at)}")
        lines.append(f"  held:     {held[sub.name].describe()}")
        ready = prefetched.get(sub.name, [])
        if ready:
            size = sum(b.size for b in ready)
            lines.append(f"  prefetched, verified and ready: {len(ready)} package(s), {size} bytes")
            lines += [f"            {b.cpv} ({b.size} bytes)" for b in ready]
        if sub.error is not None:
            lines.append(f"  error:    {sub.error} (at {_when(sub.error_at)})")
    return "\n".join(lines)


def _render_expiry(sub: Subscription, now: float) -> list[str]:
    """The head's and root's expiry in words, and a warning line when it is near or past."""
    fresh = sub.freshness(now=now)
    if fresh is None:
        return []
    lines = [
        f"  expires:  head commit {_expiry_words(fresh.head_expires, now)}",
        f"            trust root {_expiry_words(fresh.root_expires, now)}",
    ]
    warning = fresh.warning()
    if fresh.state == "expired":
        lines.append(f"  STALE:    {warning}; its packages are not offered")
    elif warning is not None:
        lines.append(f"  warning:  {warning}")
    return lines


def _expiry_words(moment: int, now: float) -> str:
    left = moment - int(now)
    span = describe_span(abs(left))
    return f"{_when(moment)} ({'in ' + span if left > 0 else span + ' ago'})"
