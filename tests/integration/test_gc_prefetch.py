"""``ipfsbin gc`` and prefetch on two real Kubo nodes and real Portage.

alpha builds, publishes and maintains the index; beta follows it, serves it
to a client playground and installs v1 of five packages with the real
emerge. Then, in file order (one shared story): gc keeps the installed
builds; ``sync --follow`` with ``prefetch = "@world"`` sees a head that yanks
one installed package and carries v2 of two others, and prefetches those by
itself; gc frees the yanked package and the old index nodes and keeps the
rest; gc racing a real sync (paused with its blocks fetched and not pinned,
alpha stopped meanwhile) waits, and the new head stays whole; with alpha
gone, a fresh shim still lists everything and emerge reinstalls an
installed package and installs the two prefetched updates.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ipfsbin.codec.cid import CID
from ipfsbin.errors import KuboError
from ipfsbin.kubo.client import KuboClient
from ipfsbin.serve.requests import read_requests
from ipfsbin.subscribe.state import SubscriptionStore
from tests.integration.serve_helpers import free_port
from tests.integration.test_shim import IPFSBIN, PROFILE, Host, Story
from tests.playground.builder import BuilderPlayground
from tests.playground.ebuilds import blob_ebuild

# a real emerge story on a shared machine: the fixture alone builds and installs 7 packages
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]


EBUILDS = {
    "app-misc/alpha-1": blob_ebuild(400_000),
    "app-misc/alpha-2": blob_ebuild(450_000),
    "app-misc/beta-1": blob_ebuild(300_000),
    "app-misc/beta-2": blob_ebuild(350_000),
    "app-misc/gamma-1": blob_ebuild(200_000),
    "app-misc/doomed-1": blob_ebuild(3_000_000),
    "app-misc/extra-1": blob_ebuild(100_000),
}
V1 = ("app-misc/alpha-1", "app-misc/beta-1", "app-misc/gamma-1", "app-misc/doomed-1")
V2 = ("app-misc/alpha-2", "app-misc/beta-2")
PREFETCH = '[prefetch]\nmode = "@world"\nbudget = "1G"\nrate = "50M"\n'


class GcStory(Story):
    follow: subprocess.Popen[str] | None = None
    published: dict[str, dict[str, Any]]
    old: dict[str, Any]
    """beta's subscription before the head that yanks doomed and carries v2."""

    def client_env(self, **extra: str) -> dict[str, str]:
        env = {**self.client.env(), **self.beta.env(), "PATH": os.environ["PATH"], **extra}
        for key in ("PORTAGE_OVERRIDE_EPREFIX", "PORTAGE_REPOSITORIES", "PYTHONPATH"):
            env[key] = self.client.env()[key]
        return env

    def gc(self, *args: str) -> dict[str, Any]:
        out = self.client_run("gc", "--json", *args).stdout
        result: dict[str, Any] = json.loads(out)
        return result

    def publish(self, *cpvs: str) -> dict[str, dict[str, Any]]:
        published = self.alpha.json("publish", "--key", "builder", "--profile", PROFILE,
                                    *(str(self.builds[c]) for c in cpvs))  # fmt: skip
        self.alpha.run("index", "add", *(p["attestation"] for p in published))
        found = dict(zip(cpvs, published, strict=True))
        self.published = {**getattr(self, "published", {}), **found}
        return found

    def release(self, message: str) -> None:
        self.alpha.run("index", "commit", "-m", message, "--key", "maintainer")
        self.alpha.run("index", "publish", "--key", "maintainer", "--allow-offline")

    def subscription(self) -> Any:
        (sub,) = self.beta.json("status")
        return sub

    def held(self) -> frozenset[CID]:
        store = SubscriptionStore(self.beta.home / "subscriptions.sqlite")
        try:
            return store.held(self.name)
        finally:
            store.close()


def _local(client: KuboClient, cid: CID) -> bool:
    try:
        client.block_stat(cid, offline=True)
    except KuboError:
        return False
    return True


def _sha256_offline(client: KuboClient, cid: CID) -> str:
    return hashlib.sha256(client.cat_bytes(cid, offline=True)).hexdigest()


@pytest.fixture(scope="module")
def story(kubo_nodes: Any) -> Iterator[GcStory]:
    alpha_node, beta_node = kubo_nodes(2)
    workdir = Path(tempfile.mkdtemp(prefix="ipfsbin-gc-"))
    alpha = Host(workdir / "alpha", alpha_node)
    beta = Host(workdir / "beta", beta_node)
    client = BuilderPlayground.create(ebuilds=EBUILDS)
    try:
        # built under the client's own EPREFIX (see BuilderPlayground.build_only), not merged
        pkgdir = workdir / "builds"
        client.build_only(*(f"={c}" for c in V1), "=app-misc/extra-1", pkgdir=pkgdir)
        builds = client.build_only(*(f"={c}" for c in V2), pkgdir=pkgdir)
        alpha.json("key", "gen", "builder")
        alpha.json("key", "gen", "maintainer")
        builder_id = alpha.json("key", "show", "builder")["key_id"]
        root = alpha.json("index", "init", "--key", "maintainer", "--builder", builder_id)
        story = GcStory(alpha=alpha, beta=beta, client=client, name="", port=free_port(),
                        workdir=workdir, builds=builds)  # fmt: skip
        story.publish(*V1)
        story.alpha.run("index", "commit", "-m", "v1", "--key", "maintainer")
        story.name = alpha.json("index", "publish", "--key", "maintainer", "--allow-offline")[
            "name"
        ]
        beta.run("subscribe", story.name, "--root", root["root"])
        (beta.home / "config").mkdir(parents=True, exist_ok=True)
        (beta.home / "config/ipfsbin.toml").write_text(PREFETCH)
        assert beta.json("sync")[0]["outcome"] == "accepted"
        changes = subprocess.run(
            [IPFSBIN, "setup-portage", "--root", str(client.eprefix), "--user", "nobody"],
            env={**beta.env(),
                 "PORTAGE_OVERRIDE_EPREFIX": client.env()["PORTAGE_OVERRIDE_EPREFIX"]},
            capture_output=True, text=True,
        )  # fmt: skip
        assert changes.returncode == 0, changes.stderr
        conf = client.eprefix / "etc/portage/binrepos.conf/ipfsbin.conf"
        conf.write_text(conf.read_text().replace("127.0.0.1:7711", f"127.0.0.1:{story.port}"))
        story.start_serve()
        story.emerge("--getbinpkgonly", *(f"={c}" for c in V1))
        assert set(V1) <= story.installed()
        yield story
        if story.follow is not None and story.follow.poll() is None:
            story.follow.kill()
        story.stop_serve()
    finally:
        client.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_shim_logs_requests_and_gc_keeps_the_installed_builds(story: GcStory) -> None:
    story.stop_serve()  # flushes the request log
    requested = {r.cpv for r in read_requests(story.beta.home / "requests.sqlite").values()}
    assert set(V1) <= requested
    story.start_serve()
    dry = story.gc("--dry-run", "--keep-size", "1M")
    assert dry["dry_run"] and dry["freed_bytes"] is None
    assert "app-misc/doomed-1" in {k["cpv"] for k in dry["dropped"]}  # 3 MB > the budget
    first = story.gc()
    kept = {k["cpv"]: k["why"] for k in first["kept"]}
    assert kept == dict.fromkeys(V1, "installed"), first
    # per entry: manifest, descriptor, attestation envelope and payload; one shared platform
    assert first["metadata_blocks"] == 4 * 4 + 1
    with story.beta.node.client() as kubo:
        for cpv in V1:
            assert _local(kubo, CID.from_text(_binpkg(first, cpv)))


def _binpkg(report: dict[str, Any], cpv: str) -> str:
    (found,) = [k["binpkg"] for k in report["kept"] if k["cpv"] == cpv]
    return str(found)


def test_sync_follow_prefetches_updates_of_installed_packages(story: GcStory) -> None:
    story.old = story.subscription()
    follow_log = (story.workdir / "follow.log").open("w")
    story.follow = subprocess.Popen(
        [IPFSBIN, "sync", "--follow", "--interval", "1s"],
        env=story.client_env(),
        stdout=subprocess.DEVNULL,
        stderr=follow_log,
        text=True,
    )
    follow_log.close()  # the child has its own copy
    shown = story.alpha.json("index", "show")["entries"]
    (doomed,) = [e for e in shown if "/app-misc/doomed/" in e["key"]]
    story.alpha.run("index", "yank", doomed["key"], "--reason", "miscompiled (test)")
    published = story.publish(*V2)
    story.release("yank doomed, alpha and beta v2")
    # no other command: the follower syncs, plans and fetches by itself
    story.wait_for(
        lambda: {b["cpv"] for b in story.subscription()["prefetched"]} == set(V2),
        "alpha-2 and beta-2 to be prefetched",
        timeout=180,
    )
    log = (story.workdir / "follow.log").read_text()
    assert "prefetched app-misc/alpha-2" in log and "version): ready" in log, log
    with story.beta.node.client() as kubo:
        for cpv in V2:
            binpkg = CID.from_text(published[cpv]["binpkg"])
            assert kubo.is_pinned(binpkg, pin_type="recursive")
            expected = hashlib.sha256(story.builds[cpv].read_bytes()).hexdigest()
            assert _sha256_offline(kubo, binpkg) == expected
    text = story.client_run("status").stdout
    assert "prefetched, verified and ready: 2 package(s)" in text and "app-misc/beta-2" in text
    shown = httpx.get(f"http://127.0.0.1:{story.port}/status", timeout=10).json()["prefetched"]
    assert {b["cpv"] for b in shown} == set(V2)
    story.follow.send_signal(signal.SIGTERM)
    assert story.follow.wait(timeout=60) == 0


def test_gc_frees_the_yanked_package_and_old_index_nodes(story: GcStory) -> None:
    old = story.old
    old_root, old_envelope = CID.from_text(old["index_root"]), CID.from_text(old["head_envelope"])
    with story.beta.node.client() as kubo:
        assert _local(kubo, old_root) and _local(kubo, old_envelope)  # released, not removed
    report = story.gc()
    kept = {k["cpv"]: k["why"] for k in report["kept"]}
    assert kept == {"app-misc/alpha-1": "installed", "app-misc/beta-1": "installed",
                    "app-misc/gamma-1": "installed", "app-misc/alpha-2": "prefetch",
                    "app-misc/beta-2": "prefetch"}, report  # fmt: skip
    assert report["released_keep"] >= 1 and report["freed_bytes"] > 3_000_000, report
    with story.beta.node.client() as kubo:
        assert not _local(kubo, old_root) and not _local(kubo, old_envelope)
        assert not _local(kubo, CID.from_text(story.published["app-misc/doomed-1"]["binpkg"]))
        missing = [c for c in story.held() if not _local(kubo, c)]
        assert not missing, f"{len(missing)} blocks of the current head were removed"


def test_gc_racing_a_sync_keeps_the_new_head_whole(story: GcStory) -> None:
    story.publish("app-misc/extra-1")
    story.release("extra")
    marker = story.workdir / "sync-paused"
    sync = subprocess.Popen(
        [IPFSBIN, "sync", "--json"],
        env=story.client_env(
            IPFSBIN_PAUSE_AT="before-keep",
            IPFSBIN_PAUSE_FILE=str(marker),
            IPFSBIN_PAUSE_SECONDS="600",  # until the marker is removed below
        ),  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    story.wait_for(marker.exists, "the sync to pause with its blocks fetched", timeout=120)
    story.alpha.node.stop()  # from now on only beta's own repo has the new head's blocks
    gc_log = story.workdir / "gc-race.err"
    with gc_log.open("w") as err:
        gc = subprocess.Popen([IPFSBIN, "gc", "--json"], env=story.client_env(),
                              stdout=subprocess.PIPE, stderr=err, text=True)  # fmt: skip
        story.wait_for(lambda: "waiting for a sync or prefetch in flight" in gc_log.read_text(),
                       "gc to wait for the paused sync", timeout=120)  # fmt: skip
        assert sync.poll() is None and gc.poll() is None  # the sync still holds its blocks
        marker.unlink()  # the sync goes on
        out, sync_err = sync.communicate(timeout=300)
        assert sync.returncode == 0, sync_err
        assert json.loads(out)[0]["outcome"] == "accepted"
        gc_out, _ = gc.communicate(timeout=300)
    assert gc.returncode == 0, gc_log.read_text()
    assert json.loads(gc_out)["removed_blocks"] >= 0
    head = story.subscription()
    assert head["height"] == story.old["height"] + 2
    with story.beta.node.client() as kubo:
        held = story.held()
        assert CID.from_text(head["index_root"]) in held
        missing = [c for c in held if not _local(kubo, c)]
        assert not missing, f"{len(missing)} blocks of the new head were removed"


def test_offline_a_fresh_shim_reinstalls_and_updates_from_local_blocks(story: GcStory) -> None:
    assert not story.alpha.node.running  # no peer: Kubo is offline from the network
    story.stop_serve()
    started = time.monotonic()
    story.start_serve()
    listed = {p["CPV"] for p in story.packages()}
    # a build whose blocks are not here (extra-1's manifest) must not hold the start up
    # for Kubo's 30 s fetch timeout: it is fetched in the background
    assert time.monotonic() - started < 10, story.log.read_text()
    assert {"app-misc/gamma-1", *V2} <= listed and "app-misc/doomed-1" not in listed
    story.wait_for(lambda: "fetching missed blocks" in story.log.read_text(),
                   "the missed blocks to be asked of the network in the background")  # fmt: skip
    for cached in story.pkgdir_files():  # Portage must ask the shim, not reuse its download
        cached.unlink()
    story.emerge("--oneshot", "--getbinpkgonly", "=app-misc/gamma-1")
    out = story.emerge("-uDN", "@world", "--getbinpkg")
    lines = out.stdout.splitlines()
    for cpv in V2:
        assert any("Emerging binary" in line and cpv in line for line in lines), out.stdout
    assert set(V2) <= story.installed()
    served = {d["cpv"] for d in httpx.get(f"http://127.0.0.1:{story.port}/status").json()
              ["downloads"]["recent"]}  # fmt: skip
    assert {"app-misc/gamma-1", *V2} <= served
