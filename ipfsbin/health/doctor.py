"""``ipfsbin doctor``: every check a finding, each wrong one with the command that fixes it.

Checks, in order: the Kubo daemon (reachable, version), its swarm (peers),
reachability and hole punching, each followed head's age and expiry, the
binhost shim and Portage's binrepos.conf entries for it, Portage settings
that keep emerge from using binaries, and disk space against the GC budget
(``gc.keep_size``). A check that cannot run because an earlier one failed
(no Kubo: no swarm, no disk figures) is left out rather than guessed.

Reachability: Kubo 0.39 has no RPC that returns AutoNAT's verdict (``ipfs
swarm addrs autonat`` came after 0.39). What the verdict changes is visible
through ``id``: a node AutoNAT found private takes relay reservations and
lists ``/p2p-circuit`` addresses; a public one lists global addresses; and
the hole-punching protocol (``/libp2p/dcutr``) is listed while it runs.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import httpx

from ipfsbin.config import ClientConfig
from ipfsbin.errors import IpfsbinError
from ipfsbin.health.findings import Finding, Report
from ipfsbin.host.installed import BinarySettings
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.install import KUBO_VERSION
from ipfsbin.kubo.records import NodeIdentity
from ipfsbin.subscribe.state import Subscription
from ipfsbin.trust.freshness import Freshness, describe_span

__all__ = ["DoctorInputs", "run_doctor"]

_DCUTR: Final = "/libp2p/dcutr"
_GETBINPKG: Final = frozenset({"--getbinpkg", "-g", "--getbinpkgonly", "-G"})
_DISABLES: Final = ("--getbinpkg=n", "--usepkg=n", "--getbinpkgonly=n")


@dataclass(frozen=True, kw_only=True)
class DoctorInputs:
    """What the checks read; each source is a callable so a failing one fails one check."""

    config: ClientConfig
    api: str
    """The Kubo API in use (a multiaddr or URL), for messages and fix commands."""
    managed: bool
    """True when the API is the user's managed node (``ipfsbin node start`` starts it)."""
    kubo_binary: str
    connect: Callable[[], KuboClient]
    subscriptions: Callable[[], list[Subscription]]
    freshness: Callable[[str], Freshness | None]
    binary_settings: Callable[[], BinarySettings]
    shim_is_self: bool = False
    """The page of ``ipfsbin serve`` asks: the shim answers, or this would not run."""


def _ipfs(inputs: DoctorInputs, *args: str) -> str:
    return shlex.join([inputs.kubo_binary, "--api", inputs.api, *args])


def _restart(inputs: DoctorInputs) -> str:
    if inputs.managed:
        return "ipfsbin node stop && ipfsbin node start"
    return "restart the Kubo daemon"


def _kubo(inputs: DoctorInputs, version: str) -> Iterator[Finding]:
    if version.split(".")[:2] == KUBO_VERSION.lstrip("v").split(".")[:2]:
        yield Finding(check="kubo", status="ok", message=f"Kubo {version} answers at {inputs.api}")
    else:
        yield Finding(
            check="kubo",
            status="warn",
            message=f"Kubo {version} answers at {inputs.api}; "
            f"ipfsbin is tested with {KUBO_VERSION}",
            fix="ipfsbin node install" if inputs.managed else f"install Kubo {KUBO_VERSION}",
        )


def _is_global(addr: str) -> bool:
    parts = addr.split("/")
    for proto, value in zip(parts[1::2], parts[2::2], strict=False):
        if proto in ("ip4", "ip6"):
            try:
                return ipaddress.ip_address(value).is_global
            except ValueError:
                return False
    return False


def _reachability(identity: NodeIdentity) -> tuple[str, str]:
    relayed = [a for a in identity.addresses if "/p2p-circuit" in a]
    public = [a for a in identity.addresses if "/p2p-circuit" not in a and _is_global(a)]
    if public:
        return "public", f"public: peers dial it at {public[0]}"
    if relayed:
        return "relayed", (
            f"behind NAT, relayed: reachable through {len(relayed)} relay address(es) "
            "(AutoNAT found no public address; the relay client holds reservations)"
        )
    return "private", (
        "behind NAT or on a private network: no public or relay address is announced, "
        "so only peers on the same network can dial this node"
    )


def _setting(config: dict[str, Any], *path: str) -> Any:
    value: Any = config
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _network(inputs: DoctorInputs, client: KuboClient) -> Iterator[Finding]:
    peers = client.swarm_peers()
    if peers:
        yield Finding(check="swarm", status="ok", message=f"connected to {len(peers)} peer(s)")
    else:
        yield Finding(
            check="swarm",
            status="fail",
            message="connected to no peer: nothing can be fetched or served",
            fix=f"{_ipfs(inputs, 'bootstrap', 'list')} (at least one reachable peer), "
            "then: " + _restart(inputs),
        )
    identity = client.id()
    kind, text = _reachability(identity)
    yield Finding(check="reachability", status="ok" if kind == "public" else "info", message=text)
    config = client.config_show()
    punching = _setting(config, "Swarm", "EnableHolePunching") is not False
    relay_client = _setting(config, "Swarm", "RelayClient", "Enabled") is not False
    if punching:
        # libp2p opens the DCUtR handler only once the node knows an address to punch from
        state = "DCUtR runs" if _DCUTR in identity.protocols else "DCUtR waits for a public address"
        message = f"hole punching is on ({state})"
        if not relay_client:
            message += "; the relay client is off, so no relayed connection can be upgraded"
        yield Finding(check="hole-punching", status="ok", message=message)
    else:
        yield Finding(
            check="hole-punching",
            status="info" if kind == "public" else "warn",
            message="hole punching is switched off in the Kubo config: "
            "peers behind NAT cannot connect to each other directly",
            fix=f"{_ipfs(inputs, 'config', '--json', 'Swarm.EnableHolePunching', 'true')} "
            f"&& {_restart(inputs)}",
        )


def _heads(inputs: DoctorInputs) -> Iterator[Finding]:
    now = time.time()
    subs = inputs.subscriptions()
    if not subs:
        yield Finding(
            check="heads",
            status="warn",
            message="no index is followed: there is nothing to install from",
            fix="ipfsbin subscribe NAME --root CID",
        )
        return
    for sub in subs:
        check = f"head:{sub.name}"
        fresh = inputs.freshness(sub.name)
        if sub.head is None or fresh is None:
            why = f" (last sync: {sub.error})" if sub.error else ""
            yield Finding(
                check=check,
                status="warn",
                message=f"{sub.name}: no head accepted yet{why}",
                fix="ipfsbin sync",
            )
            continue
        age = (
            ""
            if sub.accepted_at is None
            else f", accepted {describe_span(int(now - sub.accepted_at))} ago"
        )
        where = f"{sub.name}: height {sub.height}{age}"
        if fresh.state in ("expired", "expiring"):
            yield Finding(
                check=check,
                status="fail" if fresh.state == "expired" else "warn",
                message=f"{where}; {fresh.warning()}",
                fix="ipfsbin sync",
            )
        elif sub.error:
            yield Finding(
                check=check,
                status="warn",
                message=f"{where}; the last sync failed: {sub.error}",
                fix="ipfsbin sync",
            )
        else:
            yield Finding(
                check=check,
                status="ok",
                message=f"{where}; usable for {describe_span(fresh.seconds_left)}",
            )


def _shim(inputs: DoctorInputs) -> Iterator[Finding]:
    url = f"http://{inputs.config.serve.listen}/"
    if inputs.shim_is_self:
        yield Finding(check="shim", status="ok", message=f"the binhost answers at {url}")
        return
    try:
        answer = httpx.get(f"{url}status", timeout=3.0)
        answer.raise_for_status()
    except httpx.HTTPError as exc:
        yield Finding(
            check="shim",
            status="fail",
            message=f"the binhost does not answer at {url} ({type(exc).__name__})",
            fix="ipfsbin serve  (or start the ipfsbin-serve service)",
        )
        return
    yield Finding(check="shim", status="ok", message=f"the binhost answers at {url}")


def _portage(inputs: DoctorInputs, settings: BinarySettings) -> Iterator[Finding]:
    base = f"http://{inputs.config.serve.listen}/"
    served = [s.name for s in inputs.subscriptions() if inputs.config.serve.serves(s.name)]
    uris = {r.sync_uri.rstrip("/") for r in settings.binrepos}
    missing = [n for n in served if f"{base}{n}" not in uris]
    root = settings.config_root
    fix = "ipfsbin setup-portage" + ("" if root in ("", "/") else f" --root {shlex.quote(root)}")
    if os.getuid() == 0:
        # setup-portage refuses to make the services run as root
        fix += " --user <unprivileged user>"
    if missing:
        yield Finding(
            check="binrepos",
            status="fail",
            message=f"binrepos.conf has no entry for {len(missing)} served index(es) "
            f"({', '.join(m[:16] + '…' for m in missing)}): emerge never asks the binhost",
            fix=fix,
        )
    else:
        yield Finding(
            check="binrepos",
            status="ok",
            message=f"binrepos.conf points at the binhost for {len(served)} index(es)",
        )
    opts = settings.emerge_default_opts
    make_conf = shlex.quote(settings.make_conf)
    disabled = [o for o in opts if o in _DISABLES]
    if disabled:
        yield Finding(
            check="portage:usepkg",
            status="fail",
            message=f"EMERGE_DEFAULT_OPTS has {' '.join(disabled)}: emerge ignores binaries",
            fix=f"remove {' '.join(disabled)} from EMERGE_DEFAULT_OPTS in {settings.make_conf}",
        )
    if "getbinpkg" in settings.features or any(o in _GETBINPKG for o in opts):
        yield Finding(
            check="portage:getbinpkg",
            status="ok",
            message="emerge fetches binaries by default (FEATURES or EMERGE_DEFAULT_OPTS)",
        )
    else:
        yield Finding(
            check="portage:getbinpkg",
            status="warn",
            message="neither FEATURES=getbinpkg nor EMERGE_DEFAULT_OPTS --getbinpkg is set: "
            "emerge builds from source unless --getbinpkg is given each time",
            fix=f"echo 'FEATURES=\"${{FEATURES}} getbinpkg\"' >> {make_conf}",
        )
    if "binpkg-request-signature" in settings.features:
        yield Finding(
            check="portage:signature",
            status="fail",
            message="FEATURES has binpkg-request-signature: Portage refuses every binpkg "
            "without a gpg signature, and ipfsbin's trust is the signed index instead",
            fix=f"echo 'FEATURES=\"${{FEATURES}} -binpkg-request-signature\"' >> {make_conf}",
        )


def _disk(inputs: DoctorInputs, client: KuboClient) -> Iterator[Finding]:
    stat = client.repo_stat()
    budget = inputs.config.gc.keep_size
    used = stat.repo_size
    if budget is None:
        yield Finding(
            check="disk",
            status="info",
            message=f"the Kubo repo holds {_size(used)}; gc.keep_size is unset, so only "
            f"Kubo's StorageMax ({_size(stat.storage_max)}) bounds it",
        )
        return
    try:
        free = shutil.disk_usage(stat.repo_path).free
    except OSError:
        free = None
    if used > budget:
        yield Finding(
            check="disk",
            status="fail",
            message=f"the Kubo repo holds {_size(used)}, over gc.keep_size ({_size(budget)})",
            fix=_ipfs(inputs, "repo", "gc"),
        )
    elif free is not None and used + free < budget:
        yield Finding(
            check="disk",
            status="warn",
            message=f"gc.keep_size is {_size(budget)} but the disk has room for "
            f"{_size(used + free)} (repo {_size(used)} + {_size(free)} free)",
            fix="lower gc.keep_size in ipfsbin.toml, or free disk space",
        )
    else:
        yield Finding(
            check="disk",
            status="ok",
            message=f"the Kubo repo holds {_size(used)} of gc.keep_size {_size(budget)}",
        )


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _guard(check: str, run: Callable[[], Iterator[Finding]]) -> Iterator[Finding]:
    try:
        yield from run()
    except IpfsbinError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        yield Finding(check=check, status="fail", message=f"{exc.message}{hint}")


def run_doctor(inputs: DoctorInputs) -> Report:
    """Run every check; a check that raises becomes a failed finding, the others still run."""
    findings: list[Finding] = []
    client: KuboClient | None = None
    try:
        client = inputs.connect()
        version = client.version().version
    except IpfsbinError as exc:
        if client is not None:
            client.close()
        findings.append(
            Finding(
                check="kubo",
                status="fail",
                message=f"Kubo does not answer at {inputs.api}: {exc.message}",
                fix="ipfsbin node start" if inputs.managed else "start the Kubo daemon",
            )
        )
        client = None
    if client is not None:
        with client:
            findings += _kubo(inputs, version)
            findings += _guard("swarm", lambda: _network(inputs, client))
            findings += _guard("disk", lambda: _disk(inputs, client))
    findings += _guard("heads", lambda: _heads(inputs))
    findings += _guard("shim", lambda: _shim(inputs))
    findings += _guard("portage", lambda: _portage(inputs, inputs.binary_settings()))
    return Report.of(findings)
