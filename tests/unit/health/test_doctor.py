"""doctor's checks over plain inputs: Portage settings, heads, reachability, the report."""

from __future__ import annotations

import time
from typing import Any

from ipfsbin.codec.cid import CID
from ipfsbin.config import ClientConfig
from ipfsbin.errors import KuboUnavailableError
from ipfsbin.health.charts import render_report
from ipfsbin.health.doctor import DoctorInputs, run_doctor
from ipfsbin.health.findings import Finding, Report
from ipfsbin.host.installed import BinaryRepo, BinarySettings
from ipfsbin.kubo.client import KuboClient
from ipfsbin.subscribe.state import Subscription
from ipfsbin.trust.freshness import Freshness
from ipfsbin.trust.state import RootPin

HEAD = CID.from_text("bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
NAME = "k51qzi5uqu5dexample"


def _no_kubo() -> KuboClient:
    raise KuboUnavailableError("no Kubo daemon", hint="ipfsbin node start")


def _inputs(
    subs: list[Subscription], fresh: dict[str, Freshness], settings: BinarySettings, **kw: Any
) -> DoctorInputs:
    return DoctorInputs(
        config=ClientConfig(),
        api="/ip4/127.0.0.1/tcp/5001",
        managed=True,
        kubo_binary="/usr/bin/ipfs",
        connect=_no_kubo,
        subscriptions=lambda: subs,
        freshness=fresh.get,
        binary_settings=lambda: settings,
        **kw,
    )


def _sub(**kw: Any) -> Subscription:
    return Subscription(name=NAME, pin=RootPin(cid=HEAD), roots=(HEAD,), **kw)


def _settings(**kw: Any) -> BinarySettings:
    values: dict[str, Any] = {
        "config_root": "/",
        "features": frozenset({"getbinpkg"}),
        "emerge_default_opts": (),
        "binrepos": (BinaryRepo(name="ipfsbin", sync_uri=f"http://127.0.0.1:7711/{NAME}"),),
    }
    values.update(kw)
    return BinarySettings(**values)


def _by_check(report: Report) -> dict[str, Finding]:
    return {f.check: f for f in report.findings}


def test_kubo_down_is_one_failure_with_its_fix_and_the_rest_still_runs() -> None:
    now = int(time.time())
    fresh = Freshness(head_expires=now + 86400 * 5, root_expires=now + 86400 * 300, now=now)
    sub = _sub(head=HEAD, height=3, accepted_at=now - 60, head_expires=now + 5 * 86400)
    report = run_doctor(_inputs([sub], {NAME: fresh}, _settings(), shim_is_self=True))
    found = _by_check(report)
    assert found["kubo"].status == "fail" and found["kubo"].fix == "ipfsbin node start"
    assert "swarm" not in found and "disk" not in found
    assert found[f"head:{NAME}"].status == "ok"
    assert found["binrepos"].status == "ok" and found["portage:getbinpkg"].status == "ok"
    assert not report.ok and report.worst_first()[0].check == "kubo"


def test_expired_and_expiring_heads() -> None:
    now = int(time.time())
    expired = Freshness(head_expires=now - 10, root_expires=now + 10**7, now=now)
    sub = _sub(head=HEAD, height=3, accepted_at=now - 60)
    found = _by_check(run_doctor(_inputs([sub], {NAME: expired}, _settings(), shim_is_self=True)))
    head = found[f"head:{NAME}"]
    assert head.status == "fail" and "expired" in head.message and head.fix == "ipfsbin sync"
    soon = Freshness(head_expires=now + 3600, root_expires=now + 10**8, now=now)
    found = _by_check(run_doctor(_inputs([sub], {NAME: soon}, _settings(), shim_is_self=True)))
    assert found[f"head:{NAME}"].status == "warn"
    none = _by_check(run_doctor(_inputs([], {}, _settings(), shim_is_self=True)))
    assert none["heads"].fix == "ipfsbin subscribe NAME --root CID"


def test_portage_settings_that_defeat_binaries() -> None:
    now = int(time.time())
    fresh = Freshness(head_expires=now + 10**6, root_expires=now + 10**8, now=now)
    sub = _sub(head=HEAD, height=1, accepted_at=now)
    settings = _settings(
        config_root="/opt/prefix",
        features=frozenset({"binpkg-request-signature"}),
        emerge_default_opts=("--usepkg=n", "--jobs=2"),
        binrepos=(),
    )
    found = _by_check(run_doctor(_inputs([sub], {NAME: fresh}, settings, shim_is_self=True)))
    assert found["binrepos"].status == "fail"
    assert found["binrepos"].fix is not None
    assert found["binrepos"].fix.startswith("ipfsbin setup-portage --root /opt/prefix")
    assert (
        found["portage:usepkg"].status == "fail" and "--usepkg=n" in found["portage:usepkg"].message
    )
    getbinpkg = found["portage:getbinpkg"]
    assert getbinpkg.status == "warn" and getbinpkg.fix is not None
    assert getbinpkg.fix.endswith(">> /opt/prefix/etc/portage/make.conf")
    assert found["portage:signature"].status == "fail"


def test_report_renders_each_fix_under_its_finding() -> None:
    report = Report.of(
        [
            Finding(check="swarm", status="ok", message="connected to 3 peer(s)"),
            Finding(check="disk", status="fail", message="over budget", fix="ipfs repo gc"),
            Finding(check="reachability", status="info", message="behind NAT"),
        ]
    )
    lines = render_report(report).splitlines()
    assert lines[:3] == [
        "[XX] disk: over budget",
        "     fix: ipfs repo gc",
        "[--] reachability: behind NAT",
    ]
    assert lines[-1] == "something is wrong (see fix lines)"
    assert report.to_json()["ok"] is False
    assert Report.of([report.findings[0], report.findings[2]]).ok


def test_reachability_from_announced_addresses() -> None:
    from ipfsbin.health.doctor import _reachability
    from ipfsbin.kubo.records import NodeIdentity

    def ident(*addrs: str) -> NodeIdentity:
        return NodeIdentity(
            peer_id="p", public_key="k", addresses=addrs, agent_version="kubo", protocols=()
        )

    assert _reachability(ident("/ip4/192.168.1.2/tcp/4001"))[0] == "private"
    assert _reachability(ident("/ip4/8.8.8.8/tcp/4001", "/ip4/10.0.0.1/tcp/4001"))[0] == "public"
    relayed = ident("/ip4/1.2.3.4/tcp/4001/p2p/R/p2p-circuit", "/ip4/10.0.0.1/tcp/4001")
    assert _reachability(relayed)[0] == "relayed"
