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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Annotated, Any

import typer

from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.codec.cid import CID
from ipfsbin.errors import CodecError, KuboUnavailableError, SubscriptionError
from ipfsbin.kubo.node import connect
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe.follow import (
    Keeper,
    KuboKeeper,
    KuboRecordSource,
    SyncResult,
    follow_forever,
    require_subscriptions,
    sync_all,
    sync_subscription,
)
from ipfsbin.subscribe.follow import unsubscribe as follow_unsubscribe
from ipfsbin.subscribe.gateway import (
    BlockFileKeeper,
    GatewayBlockStore,
    GatewayKeeper,
    GatewayRecordSource,
    SqliteBlockStore,
    default_block_path,
    gateway_client,
)
from ipfsbin.subscribe.state import Subscription, SubscriptionStore
from ipfsbin.trust.freshness import describe_span
from ipfsbin.trust.state import RootPin

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
    as_json: JsonOpt = False,
) -> None:
    """Follow an index: store its name and the trust root its commits are checked under."""
    with SubscriptionStore() as state:
        if add_root is not None:
            sub = state.get(name)
            state.set_roots(sub.name, [*sub.roots, _cid_option(add_root, "--add-root")])
            result = state.get(sub.name)
        else:
            if root is None and root_key is None:
                raise SubscriptionError(
                    "a subscription needs a trust root (--root CID) or a maintainer key "
                    "(--root-key KEYID)",
                    hint="--root is the root's envelope CID (`ipfsbin index status` shows it); "
                    "with --root-key alone the roots are taken from the commits' envelopes",
                )
            root_cid = None if root is None else _cid_option(root, "--root")
            pin = RootPin(key_id=root_key) if root_key is not None else RootPin(cid=root_cid)
            result = state.add(name, pin, root_cid, now=time.time())
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
    keepers: list[Keeper] = []
    closers: list[Callable[[], None]] = []
    local: KuboBlockStore | None = None
    kubo_skipped = False
    try:
        with SubscriptionStore() as state:
            canonical = state.get(name).name
            if not keep_pins:
                block_file = default_block_path()
                if block_file.exists():
                    blocks = SqliteBlockStore(block_file)
                    closers.append(blocks.close)
                    keepers.append(BlockFileKeeper(blocks))
                try:
                    client = connect()
                except KuboUnavailableError as exc:
                    if not keepers:
                        raise KuboUnavailableError(
                            f"{exc.message}; cannot unpin the blocks of {canonical}",
                            hint="start the node (`ipfsbin node start`), or pass --keep-pins "
                            "to forget the subscription and leave its pins",
                        ) from exc
                    kubo_skipped = True  # a daemon-less follower: only the block file
                else:
                    closers.append(client.close)
                    keepers.append(KuboKeeper(client))
                    local = KuboBlockStore(client, offline=True)
            released = follow_unsubscribe(state, canonical, keepers=keepers, local_store=local)
    finally:
        for close in closers:
            close()
    emit(
        {
            "name": canonical,
            "removed": True,
            "released": len(released),
            "kept_pins": keep_pins,
            "kubo_skipped": kubo_skipped,
        },
        as_json,
        _render_unsubscribed,
    )


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
    as_json: JsonOpt = False,
) -> None:
    """Check every subscription once (or keep following) and move to newer verified heads."""
    wait = parse_duration(timeout)
    limit = parse_duration(deadline)
    pause = parse_duration(interval).total_seconds()
    with SubscriptionStore() as state:
        require_subscriptions(state)
        if gateway is not None:
            round_once, closer = _gateway_round(state, gateway, wait, limit, allow_stale)
        else:
            round_once, closer = _kubo_round(state, wait, limit, allow_stale)
        try:
            if not follow:
                results = round_once()
                emit([r.to_json() for r in results], as_json, _render_all(results))
                bad = any(r.outcome in ("refused", "failed") for r in results)
                raise typer.Exit(1 if bad else 0)
            _follow(round_once, pause, as_json)
        finally:
            closer()


def _render_all(results: list[SyncResult]) -> Callable[[Any], str]:
    return lambda _: "\n".join(_render_result(r) for r in results)


def _follow(round_once: Callable[[], list[SyncResult]], pause: float, as_json: bool) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def one_round() -> None:
        for result in round_once():
            if as_json:
                sys.stdout.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
            elif result.outcome != "current":
                sys.stdout.write(_render_result(result) + "\n")
            sys.stdout.flush()

    follow_forever(one_round, interval=pause, stop=stop)


def _kubo_round(
    state: SubscriptionStore, wait: timedelta, deadline: timedelta, allow_stale: bool
) -> tuple[Callable[[], list[SyncResult]], Callable[[], None]]:
    client = connect()
    records = KuboRecordSource(client, timeout=wait)
    store = KuboBlockStore(client, offline=False, fetch_timeout=wait)
    local = KuboBlockStore(client, offline=True)
    keeper = KuboKeeper(client)

    def one(name: str) -> SyncResult:
        return sync_subscription(
            state,
            name,
            records=records,
            store=store,
            keeper=keeper,
            local_store=local,
            allow_stale=allow_stale,
            deadline=deadline,
        )

    return (lambda: sync_all(state, one)), client.close


def _gateway_round(
    state: SubscriptionStore, url: str, wait: timedelta, deadline: timedelta, allow_stale: bool
) -> tuple[Callable[[], list[SyncResult]], Callable[[], None]]:
    http = gateway_client(wait.total_seconds())
    local = SqliteBlockStore()
    records = GatewayRecordSource(http, url)

    def one(name: str) -> SyncResult:
        fetching = GatewayBlockStore(http, url, local)  # fresh per sync: nothing refused stays
        return sync_subscription(
            state,
            name,
            records=records,
            store=fetching,
            keeper=GatewayKeeper(fetching),
            local_store=local,
            allow_stale=allow_stale,
            deadline=deadline,
        )

    def close() -> None:
        http.close()
        local.close()

    return (lambda: sync_all(state, one)), close


def status(as_json: JsonOpt = False) -> None:
    """Subscriptions: accepted head and height, when last checked, and the last error."""
    with SubscriptionStore() as state:
        subs = state.all()
    now = time.time()
    emit([s.to_json(now=now) for s in subs], as_json, lambda _: _render_status(subs, now))


def _render_status(subs: list[Subscription], now: float) -> str:
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
        if sub.error is not None:
            lines.append(f"  error:    {sub.error} (at {_when(sub.error_at)})")
    return "\n".join(lines)
