"""``ipfsbin host``, ``explain`` and ``serve``: what this host is, what it may install, the binhost.

Registered as top-level commands by ``ipfsbin.cli.main``.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from ipfsbin.catalog import BuildCache, Candidate, parse_atom, read_heads
from ipfsbin.catalog import explain as explain_atom
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.config import load_config
from ipfsbin.errors import ConfigError, SubscriptionError
from ipfsbin.host.profile import HostInfo, read_host
from ipfsbin.kubo.daemon import connect
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe.follower import FollowConfig, Follower

__all__ = ["explain", "host", "serve", "setup_portage"]


def _render_host(data: dict[str, Any]) -> str:
    installed = data["installed"]
    lines = [
        f"CHOST           {data['chost']}"
        + (f" (also accepts {' '.join(data['accept_chosts'])})" if data["accept_chosts"] else ""),
        f"ARCH            {data['arch']}",
        f"profile         {data['profile']}",
        f"CPU             {data['target']}: {' '.join(data['cpu_features'])}",
        f"CFLAGS          {data['cflags']['raw']}",
        f"  normalized    {_opt(data['cflags']['normalized'])}",
        f"CXXFLAGS        {data['cxxflags']['raw']}",
        f"libc            {data['libc']['name']} {data['libc']['version']}"
        f" (from {data['sources']['libc']})",
        f"compiler        {data['compiler']['family']} {data['compiler']['version']}"
        f" (from {data['sources']['compiler']})",
        f"USE             {' '.join(data['use'])}",
        f"installed       {len(installed)} packages",
    ]
    for cp, slots in installed.items():
        lines.append(f"  {cp}  " + " ".join(f":{s}/{ss}" for s, ss in sorted(slots.items())))
    return "\n".join(lines)


def _opt(profile: dict[str, Any]) -> str:
    parts = [f"-O{profile['opt']}", f"{len(profile['features'])} ISA features"]
    if profile.get("tune"):
        parts.append(f"tune {profile['tune']}")
    parts += profile["math"] + profile["flags"]
    hardening = profile["hardening"]
    parts.append(f"stack protector {hardening['stack_protector']}, fortify {hardening['fortify']}")
    return ", ".join(parts)


def _read_host() -> HostInfo:
    return read_host(target=load_config().target)


def host(as_json: JsonOpt = False) -> None:
    """Print what ipfsbin believes about this host (read through Portage)."""
    emit(_read_host().to_json(), as_json, _render_host)


def _render_explain(result: dict[str, Any]) -> str:
    candidates = result["candidates"]
    if not candidates:
        return f"no build of {result['atom']} in any followed index"
    lines = []
    for c in candidates:
        if c["verdict"] == "offered":
            head = f"offered (choice {c['rank']})"
        else:
            head = "refused"
        lines.append(f"{c['cpv']}  {head}  [{c['subscription'][:16]}…]  {c['key']}")
        if c["use"] is not None:
            lines.append(
                f"    USE {' '.join(c['use']) or '-'}; target {c['target']}; "
                f"builders {len(c['builders'])}; BUILD_TIME {c['build_time']}"
            )
        for r in c["refusals"]:
            lines.append(f"    {r['axis']}: {r['reason']}")
    return "\n".join(lines)


def explain(
    atom: Annotated[str, typer.Argument(help="category/package or =category/package-version")],
    allow_stale: Annotated[
        bool, typer.Option("--allow-stale", help="Judge expired heads as if they were fresh.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every build of ATOM in every followed index: offered, or refused and why (per axis)."""
    try:
        parse_atom(atom)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    config = load_config()
    info = read_host(target=config.target)
    now = time.time()
    with Follower(FollowConfig(allow_stale=allow_stale)) as follower, connect() as client:
        subs = follower.subscriptions()
        if not subs:
            raise SubscriptionError(
                "no subscriptions", hint="subscribe first: `ipfsbin subscribe NAME --root CID`"
            )
        heads = read_heads(
            subs, follower.held_blocks(), freshness=lambda name: follower.freshness(name, now=now)
        )
        cache = BuildCache(
            KuboBlockStore(client, offline=False, fetch_timeout=timedelta(seconds=30))
        )
        found: list[Candidate] = explain_atom(
            atom,
            heads,
            host=info,
            policy=config.policy,
            cache=cache,
            now=now,
        )
    result = {"atom": atom, "candidates": [c.to_json() for c in found]}
    emit(result, as_json, _render_explain)


def serve(
    listen: Annotated[
        str | None,
        typer.Option("--listen", help="HOST:PORT to listen on (default: serve.listen)."),
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between checks for moved heads.")
    ] = 2.0,
    allow_stale: Annotated[
        bool,
        typer.Option(
            "--allow-stale", help="Keep offering expired heads (offline use, on purpose only)."
        ),
    ] = False,
) -> None:
    """Run the local binhost that emerge --getbinpkg talks to (see `ipfsbin setup-portage`)."""
    from dataclasses import replace

    from ipfsbin.config import ServeConfig
    from ipfsbin.serve.run import ServeOptions, serve_forever

    config = load_config()
    if listen is not None:
        config = replace(
            config, serve=ServeConfig(listen=listen, subscriptions=config.serve.subscriptions)
        )
    with connect() as client:
        serve_forever(config, client, ServeOptions(interval=interval, allow_stale=allow_stale))


def _render_changes(result: dict[str, Any]) -> str:
    lines = [
        f"{c['action']:8} {c['path']}" + (f"  ({c['note']})" if c["note"] else "")
        for c in result["changes"]
    ]
    if not result["changes"]:
        lines.append("nothing to change")
    lines.append(result["next"])
    return "\n".join(lines)


def setup_portage(
    undo: Annotated[
        bool, typer.Option("--undo", help="Remove what an earlier setup-portage wrote.")
    ] = False,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root", help="Config root (default: PORTAGE_CONFIGROOT, else EPREFIX, else /)."
        ),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Unprivileged user the services run as.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Point Portage's binrepos.conf at `ipfsbin serve` and install its service files."""
    from ipfsbin.host.profile import portage_config_root
    from ipfsbin.serve.setup_portage import PortageSetup, undo_setup_portage
    from ipfsbin.serve.setup_portage import setup_portage as do_setup

    base = root if root is not None else Path(portage_config_root())
    if undo:
        changes = undo_setup_portage(base)
        follow = "Portage no longer uses the ipfsbin binhost; stop the services if they run."
    else:
        config = load_config()
        with Follower() as follower:
            subs = follower.subscriptions()
        names = tuple(s.name for s in subs if config.serve.serves(s.name))
        account = pwd.getpwnam(user) if user else pwd.getpwuid(os.getuid())
        if account.pw_uid == 0:
            raise ConfigError(
                "the services must not run as root",
                hint="pass --user NAME, an unprivileged account that owns the ipfsbin state",
            )
        changes = do_setup(
            PortageSetup(
                root=base,
                base_url=f"http://{config.serve.listen}",
                subscriptions=names,
                user=account.pw_name,
                group=grp.getgrgid(account.pw_gid).gr_name,
                home=Path(account.pw_dir),
                ipfsbin=shutil.which("ipfsbin") or str(Path(sys.executable).with_name("ipfsbin")),
                listen=config.serve.listen,
            )
        )
        follow = (
            "Start `ipfsbin serve` (or the ipfsbin-serve service), then use "
            "`emerge --getbinpkg`. Undo with `ipfsbin setup-portage --undo`."
        )
    emit({"changes": [c.to_json() for c in changes], "next": follow}, as_json, _render_changes)
