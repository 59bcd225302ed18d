"""``ipfsbin mirror``: keep followed indexes and their packages in a pinning engine."""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from datetime import timedelta
from typing import Annotated, Any, Final

import typer

from ipfsbin.cli.follow import parse_duration, stop_on_signal
from ipfsbin.cli.output import JsonOpt, emit, print_error
from ipfsbin.cluster.pinsvc import PinningServiceClient
from ipfsbin.cluster.rest import ClusterClient
from ipfsbin.errors import ClusterError, IpfsbinError
from ipfsbin.kubo import connect
from ipfsbin.mirror import (
    ClusterEngine,
    EnginePin,
    KuboRemoteEngine,
    Mirror,
    MirrorPolicy,
    MirrorRound,
    PinEngine,
    PinningServiceEngine,
)
from ipfsbin.subscribe import FollowConfig, Follower
from ipfsbin.subscribe.follower import follow_forever

__all__ = ["TOKEN_ENV", "mirror"]

TOKEN_ENV: Final = "IPFSBIN_PINNING_TOKEN"  # noqa: S105 - a variable name, not a token


def mirror(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Subscribed index names to mirror (default: every subscription)."),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="IPFS Cluster REST API URL, e.g. http://127.0.0.1:9094."),
    ] = None,
    pinning_service: Annotated[
        str | None,
        typer.Option(
            "--pinning-service",
            help="Pinning Service API URL (token in IPFSBIN_PINNING_TOKEN); "
            "the service's own replication applies.",
        ),
    ] = None,
    kubo_remote: Annotated[
        str | None,
        typer.Option(
            "--kubo-remote",
            help="Pin through Kubo's `pin remote` client, to this service name "
            "(`ipfs pin remote service add`).",
        ),
    ] = None,
    replication: Annotated[
        int, typer.Option("--replication", min=1, help="Copies of every pin the engine keeps.")
    ] = 2,
    category: Annotated[
        list[str] | None,
        typer.Option("--category", help="Keep only packages of this category (repeatable)."),
    ] = None,
    most_requested: Annotated[
        int | None,
        typer.Option(
            "--most-requested",
            min=1,
            help="Keep only the N builds with the most providers (the usage vote; "
            "after --category); others' pins go.",
        ),
    ] = None,
    provider_timeout: Annotated[
        float,
        typer.Option(
            "--provider-timeout",
            help="Seconds to look for each build's providers with --most-requested.",
        ),
    ] = 10.0,
    status: Annotated[
        bool, typer.Option("--status", help="Show each pin's status as the engine reports it.")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep mirroring every --interval until SIGTERM.")
    ] = False,
    interval: Annotated[
        str, typer.Option("--interval", help="Time between rounds with --follow.")
    ] = "5m",
    timeout: Annotated[
        str, typer.Option("--timeout", help="How long to wait for a record or a block.")
    ] = "30s",
    as_json: JsonOpt = False,
) -> None:
    """Follow indexes as full replicas and pin them and their packages in a pinning engine.

    Each round syncs (verifying like any client), pins the index and every
    kept package with the replication factor, unpins yanked entries and those
    outside --category or --most-requested, and re-puts the current IPNS
    record so the name resolves while the publisher is offline.
    """
    given = [e for e in (cluster, pinning_service, kubo_remote) if e is not None]
    if len(given) != 1:
        raise ClusterError(
            "no pinning engine given" if not given else "more than one pinning engine given",
            hint="pass one of --cluster URL (an ipfs-cluster-service REST API), "
            "--pinning-service URL, --kubo-remote SERVICE",
        )
    wait = parse_duration(timeout)
    pause = parse_duration(interval).total_seconds()
    if provider_timeout <= 0:
        raise typer.BadParameter("must be above 0", param_hint="--provider-timeout")
    policy = MirrorPolicy(categories=frozenset(category or ()), most_requested=most_requested)
    chosen = list(names or ())
    with (
        ExitStack() as closing,
        Follower(FollowConfig(timeout=wait)) as follower,
        connect() as kubo,
    ):
        engine: PinEngine
        if cluster is not None:
            engine = ClusterEngine(closing.enter_context(ClusterClient(cluster)))
        elif pinning_service is not None:
            token = os.environ.get(TOKEN_ENV, "")
            if not token:
                raise ClusterError(
                    f"no access token for {pinning_service}",
                    hint=f"set {TOKEN_ENV} to the service's token",
                )
            client = PinningServiceClient(pinning_service, token)
            engine = PinningServiceEngine(closing.enter_context(client))
        else:
            engine = KuboRemoteEngine(kubo, str(kubo_remote))
        service = Mirror(
            follower,
            engine,
            kubo,
            replication=replication,
            policy=policy,
            timeout=wait,
            provider_timeout=timedelta(seconds=provider_timeout),
        )
        if status:
            pins = service.status(chosen)
            emit(
                {name: [p.to_json() for p in found] for name, found in pins.items()},
                as_json,
                lambda _: _render_status(pins),
            )
            return
        if not follow:
            rounds = service.round(chosen)
            emit([r.to_json() for r in rounds], as_json, lambda _: _render_rounds(rounds))
            raise typer.Exit(1 if any(_bad(r) for r in rounds) else 0)
        _follow(service, chosen, pause, as_json)


def _bad(result: MirrorRound) -> bool:
    return bool(result.errors) or result.outcome in ("refused", "failed")


def _render_rounds(rounds: list[MirrorRound]) -> str:
    lines = []
    for r in rounds:
        head = "no head yet" if r.height is None else f"height {r.height}"
        lines.append(
            f"{r.name}: {r.outcome}, {head}; {r.wanted} pins wanted, {r.pinned} pinned, "
            f"{r.unpinned} unpinned; record "
            + ("not re-put" if r.republished is None else f"sequence {r.republished} re-put")
        )
        if r.most_requested is not None:
            lines.append(f"  most requested ({len(r.most_requested)} kept):")
            lines += [
                f"    {'?' if v.providers is None else v.providers} providers  {v.key}"
                for v in r.most_requested
            ]
        lines += [f"  error: {e}" for e in r.errors]
    return "\n".join(lines)


def _render_status(pins: dict[str, list[EnginePin]]) -> str:
    lines = []
    for name, found in pins.items():
        lines.append(f"{name}: {len(found)} pins")
        for pin in found:
            pinned = sum(1 for s in pin.status.values() if s == "pinned")
            states = ", ".join(f"{peer[-6:]} {state}" for peer, state in sorted(pin.status.items()))
            copies = "the service's" if pin.replication is None else str(pin.replication)
            lines.append(f"  {pin.cid}  {pinned}/{copies} pinned  {pin.name}  ({states})")
    return "\n".join(lines)


def _follow(service: Mirror, names: list[str], pause: float, as_json: bool) -> None:
    stop = stop_on_signal()

    def once() -> Any:
        # An engine or network outage fails one round, not the service.
        try:
            results = service.round(names)
        except IpfsbinError as exc:
            print_error(exc.message, exc.hint)
            return
        for result in results:
            if as_json:
                sys.stdout.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
            else:
                sys.stdout.write(_render_rounds([result]) + "\n")
            sys.stdout.flush()

    follow_forever(once, interval=pause, stop=stop)
