"""Daemon-less ``ipfsbin serve --gateway``: a client without Kubo installs through a gateway.

The publisher's Kubo exposes its gateway as a mirror operator would
(trustless responses only: ``Gateway.DeserializedResponses=false``,
``Gateway.NoFetch=true``). Between it and the client sits a real proxy on
loopback that lies on demand (``tests/tamper_proxy.py``). The client has no
Kubo at all (its ``IPFSBIN_API`` names a port where nothing listens): it
follows with ``sync --gateway``, serves with ``serve --gateway`` and installs
with the real ``emerge --getbinpkgonly``. A lying gateway (a wrong block, a
block out of place, a CAR cut short, a slow drip) aborts the download
before a byte of the bad block is sent. The tests run in file order and
share one story.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ipfsbin.codec.cid import CID
from ipfsbin.kubo.node import ManagedNode
from tests.integration.cli_host import cli_host
from tests.integration.serve_helpers import ClientHost, Served
from tests.playground import ebuilds as repo
from tests.playground.builder import BuilderPlayground
from tests.playground.portage_env import EmergeError
from tests.tamper_proxy import TamperProxy, tamper_proxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROFILE = "default/linux/amd64/23.0"
TRUSTLESS_ONLY = {"Gateway.DeserializedResponses": False, "Gateway.NoFetch": True}
BIG_BYTES = 3_500_000  # random, so the binpkg is about as large: four 1 MiB UnixFS leaves
BIG = repo.big_package(BIG_BYTES)


@dataclass
class Story:
    client: ClientHost
    served: Served
    builds: dict[str, Path]
    proxy: TamperProxy
    name: str

    @property
    def base(self) -> str:
        return f"{self.served.root}/{self.name}"

    def listed(self, cpv: str) -> dict[str, str]:
        (found,) = [p for p in self.served.packages(self.name) if p["CPV"] == cpv]
        return found


@pytest.fixture(scope="module")
def story(kubo_nodes: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    (publisher,) = kubo_nodes(1, extra_config=TRUSTLESS_ONLY)
    playground = BuilderPlayground.create(ebuilds={**repo.EBUILDS, **BIG})
    try:
        # built under the client's own EPREFIX (see BuilderPlayground.build_only), not merged;
        # a loaded machine can take longer than emerge's default 5 minutes here
        builds = playground.build_only("dev-libs/libfoo", "app-misc/big",
                                       pkgdir=tmp_path_factory.mktemp("builds"),
                                       timeout=1200)  # fmt: skip
        name, root = _publish(
            publisher,
            tmp_path_factory.mktemp("publisher"),
            builds["dev-libs/libfoo-1"],
            builds["app-misc/big-1"],
        )
        client = ClientHost(tmp_path_factory.mktemp("client"), playground)  # no Kubo
        client.configure()
        client.run("subscribe", name, "--root", root)
        with tamper_proxy(publisher.gateway_url) as proxy:
            (synced,) = json.loads(client.run("sync", "--gateway", proxy.url, "--json").stdout)
            assert synced["outcome"] == "accepted", synced
            with client.serving("--gateway", proxy.url) as served:
                yield Story(client, served, builds, proxy, name)
    finally:
        playground.cleanup()


def _publish(node: ManagedNode, home: Path, *binpkgs: Path) -> tuple[str, str]:
    """An index of ``binpkgs`` published under IPNS from ``node``: (name, root CID)."""
    run = cli_host(home, node)
    run("key", "gen", "builder")
    run("key", "gen", "maintainer")
    builder_id = run("key", "show", "builder")["key_id"]
    root = run("index", "init", "--key", "maintainer", "--builder", builder_id)["root"]
    published = run("publish", "--key", "builder", "--profile", PROFILE, *map(str, binpkgs))
    run("index", "add", *(p["attestation"] for p in published))
    run("index", "commit", "-m", "daemon-less builds", "--key", "maintainer")
    name = run("index", "publish", "--key", "maintainer", "--allow-offline")["name"]
    return str(name), str(root)


def test_a_client_without_kubo_syncs_serves_and_installs_through_the_gateway(
    story: Story,
) -> None:
    assert "trustless gateway" in story.served.log.read_text()
    assert story.served.listed(story.name) == {"app-misc/big-1", "dev-libs/libfoo-1"}
    story.proxy.requests.clear()
    story.client.emerge("--getbinpkgonly", "--oneshot", "app-misc/big", "dev-libs/libfoo")
    assert {"app-misc/big-1", "dev-libs/libfoo-1"} <= story.client.installed()
    blob = story.client.playground.eprefix / "usr/share/big/blob"
    assert blob.stat().st_size == BIG_BYTES
    # one CAR per binpkg, no block-by-block requests
    cars = [p for p, _ in story.proxy.requests if "format=car" in p]
    assert len(cars) == 2 and not [p for p, _ in story.proxy.requests if "format=raw" in p]


def test_head_and_range_from_the_gateway(story: Story) -> None:
    big = story.listed("app-misc/big-1")
    url = f"{story.base}/{big['PATH']}"
    truth = story.builds["app-misc/big-1"].read_bytes()
    head = httpx.head(url, timeout=10)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(truth))
    ranged = httpx.get(url, headers={"Range": "bytes=1048570-2097200"}, timeout=60)
    assert ranged.status_code == 206 and ranged.content == truth[1048570:2097201]
    assert ranged.headers["content-range"] == f"bytes 1048570-2097200/{len(truth)}"


def _fetch_through_lies(story: Story, mode: str) -> tuple[int, bytes]:
    """GET the big binpkg while the proxy lies in ``mode``: (status, bytes received)."""
    big = story.listed("app-misc/big-1")
    story.proxy.mode = mode
    got = bytearray()
    status = 0
    try:
        with httpx.stream("GET", f"{story.base}/{big['PATH']}", timeout=60) as answer:
            status = answer.status_code
            for chunk in answer.iter_bytes():
                got += chunk
    except httpx.HTTPError:
        pass  # the shim cut the connection: what a lie must cause
    finally:
        story.proxy.mode = "pass"
    return status, bytes(got)


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("flip", "do not hash to"),
        ("swap", "where the walk needs"),
        ("truncate", "CAR truncated"),
        ("drip", "minimum rate"),
    ],
)
def test_a_lying_gateway_aborts_before_a_bad_byte(story: Story, mode: str, error: str) -> None:
    truth = story.builds["app-misc/big-1"].read_bytes()
    status, got = _fetch_through_lies(story, mode)
    if status == 503:  # the lie came before the first byte: the reason, no bytes
        assert error in got.decode(), got
    else:
        assert status == 200 and len(got) < len(truth)
        assert got == truth[: len(got)]  # only verified bytes went out
    if mode == "flip":  # the last leaf is bad: the verified leaves before it went out
        assert status == 200 and len(got) >= 1 << 20
    failures = story.served.status()["downloads"]["failures"]
    assert error in failures[-1]["error"], failures[-1]
    # a lying gateway is not a verdict on the build: it stays listed
    assert "app-misc/big-1" in story.served.listed(story.name)


def test_emerge_through_a_lying_gateway_fails_cleanly_then_succeeds(story: Story) -> None:
    for old in [p for p in story.client.downloaded() if "big" in p.name]:
        old.unlink()  # the copy fetched earlier would be reused without a download
    size = story.builds["app-misc/big-1"].stat().st_size
    story.proxy.mode = "flip"
    try:
        with pytest.raises(EmergeError):
            story.client.emerge("--getbinpkgonly", "--oneshot", "app-misc/big")
    finally:
        story.proxy.mode = "pass"
    for path in story.client.downloaded():
        if "big" in path.name:
            assert path.name.endswith(".partial") and path.stat().st_size < size, path
    story.client.emerge("--getbinpkgonly", "--oneshot", "app-misc/big")
    blob = story.client.playground.eprefix / "usr/share/big/blob"
    assert blob.stat().st_size == BIG_BYTES


def test_a_gateway_without_ordered_cars_is_read_block_by_block(story: Story) -> None:
    truth = story.builds["app-misc/big-1"].read_bytes()
    story.proxy.requests.clear()
    status, got = _fetch_through_lies(story, "unordered")
    assert status == 200 and got == truth
    raw = [p for p, _ in story.proxy.requests if "format=raw" in p]
    assert len(raw) == 1 + -(-len(truth) // (1 << 20))  # the root and every leaf
    root = CID.from_text(story.proxy.requests[0][0].split("/ipfs/")[1].split("?")[0])
    assert f"/ipfs/{root}?format=raw" in raw
