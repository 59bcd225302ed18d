"""``ipfsbin share [--watch | --status]``: publish what this host builds, once or as a service."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from ipfsbin.builder.feed import Feed
from ipfsbin.builder.filters import FILTERS, switched_off
from ipfsbin.builder.indexed import FollowedIndexes
from ipfsbin.builder.queue import STATES, ShareQueue
from ipfsbin.builder.share import (
    SHARE_HOLDER,
    Sharer,
    ShareRound,
    feed_announcer,
    watch_pkgdir,
)
from ipfsbin.catalog import read_heads
from ipfsbin.cli.key import signing_key
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.config import ShareConfig, config_paths, load_config
from ipfsbin.errors import ConfigError
from ipfsbin.host.facts import detect_host_facts
from ipfsbin.kubo import connect
from ipfsbin.kubo.pins import PinLedger
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe.follower import Follower

__all__ = ["share"]


def _round_json(done: ShareRound) -> dict[str, Any]:
    return {
        "published": [i.path for i in done.published],
        "skipped": [
            {"path": i.path, "filter": s.filter, "reason": s.reason} for i, s in done.skipped
        ],
        "failed": [{"path": i.path, "error": why} for i, why in done.failed],
        "announced": done.announced,
    }


def _render_round(result: dict[str, Any]) -> str:
    lines = [
        f"published {len(result['published'])}, skipped {len(result['skipped'])}, "
        f"failed {len(result['failed'])}, announced {result['announced']}"
    ]
    lines += [f"  skipped {s['path']} ({s['filter']}): {s['reason']}" for s in result["skipped"]]
    lines += [f"  failed  {f['path']}: {f['error']}" for f in result["failed"]]
    return "\n".join(lines)


def _status(queue: ShareQueue, config: ShareConfig) -> dict[str, Any]:
    reasons = queue.skip_reasons()
    off = switched_off(config)
    return {
        "share": config.enabled,
        "pkgdir": config.pkgdir,
        "queue": queue.path,
        "states": queue.counts(),
        "filters": [
            {
                "filter": name,
                "on": name not in off,
                "override": setting,
                "skipped": reasons.get(name, 0),
            }
            for name, setting in FILTERS.items()
        ],
        "builds": [i.to_json() for i in queue.items(STATES)],
    }


def _render_status(status: dict[str, Any]) -> str:
    states = status["states"]
    lines = [
        f"sharing {'on' if status['share'] else 'off'} for {status['pkgdir']}",
        "queue: " + ", ".join(f"{states[s]} {s}" for s in states),
        "filters:",
    ]
    for f in status["filters"]:
        state = "on " if f["on"] else "off"
        lines.append(
            f"  {f['filter']:<13} {state} skipped {f['skipped']:>4}  (off: {f['override']})"
        )
    for row in status["builds"]:
        what = row["cpv"] or row["path"]
        if row["state"] == "skipped":
            lines.append(f"skipped {what} ({row['reason']}): {row['detail']}")
        elif row["state"] == "failed":
            lines.append(f"failed  {what}: {row['detail']}")
    return "\n".join(lines)


def share(
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep sharing new binpkgs as they appear (a service).")
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Show the queue and each filter's refusals.")
    ] = False,
    pkgdir: Annotated[
        Path | None,
        typer.Option("--pkgdir", help="PKGDIR to share (default: sharing.pkgdir in the config)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish the binpkgs this host builds: catch up once, or watch PKGDIR with --watch.

    Needs `share = true` in ipfsbin.toml. Quickpkg output, RESTRICT=bindist or
    fetch packages, user-patched builds and builds a followed index already
    has are skipped by default; --status says which and why.
    """
    config = load_config().share
    if pkgdir is not None:
        config = dataclasses.replace(config, pkgdir=pkgdir)
    if status:
        with ShareQueue() as queue:
            emit(_status(queue, config), as_json, _render_status)
        return
    if not config.enabled:
        raise ConfigError(
            "sharing is off",
            hint=f"opt in with `share = true` at the top of {config_paths()[0]} "
            "(or your own ipfsbin.toml)",
        )
    if not config.pkgdir.is_dir():
        raise ConfigError(
            f"PKGDIR {config.pkgdir} is not a directory",
            hint="set sharing.pkgdir in ipfsbin.toml or pass --pkgdir",
        )
    key = signing_key(config.key)
    config_root = Path(os.environ.get("PORTAGE_CONFIGROOT") or "/")
    host = detect_host_facts(config_root=config_root)
    with (
        connect() as client,
        ShareQueue() as queue,
        Follower() as follower,
        Feed.open(client, key) as feed,
    ):
        indexes = FollowedIndexes(
            lambda: read_heads(
                follower.subscriptions(), follower.held_blocks(), freshness=follower.freshness
            ),
            local=follower.held_blocks(),
            fetch=KuboBlockStore(client, offline=False, fetch_timeout=timedelta(seconds=30)),
        )
        sharer = Sharer(
            queue=queue,
            client=client,
            ledger=PinLedger(client),
            key=key,
            host=host,
            config=config,
            config_root=config_root,
            indexed=indexes.find,
            announce=feed_announcer(client, feed),
        )
        if not watch:
            emit(_round_json(sharer.catch_up()), as_json, _render_round)
            return
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="ipfsbin share: %(message)s"
        )
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        logging.getLogger("ipfsbin.share").info(
            "watching %s (pins named %s, feed %s)", config.pkgdir, SHARE_HOLDER, feed.name
        )
        watch_pkgdir(sharer, stop=stop)
