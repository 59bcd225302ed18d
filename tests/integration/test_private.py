"""Private swarms: nodes sharing a swarm key exchange an index and a package; others cannot.

Real Kubo daemons on loopback. The maintainer and the client run the
command line against their own private node; the stranger is an ordinary
node with no key.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.codec.cid import RAW, cid_for
from ipfsbin.errors import NodeError
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.kubo.private import (
    PRIVATE_MARKER,
    SWARM_KEY_FILE,
    new_swarm_key,
    parse_swarm_key,
    swarm_key_sha256,
)
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.keys import KeyStore
from tests.integration.cli_host import cli_host
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, publish

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PEER = "/ip4/10.0.0.5/tcp/4001/p2p/12D3KooWQKH2PQJsKJF6VDYaFGgH3pP8KSMVGKRH6LfFqQHvYx6z"


@pytest.fixture(scope="module")
def private_pair(
    kubo_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ManagedNode, ManagedNode]]:
    key = new_swarm_key()
    first = ManagedNode(tmp_path_factory.mktemp("private-a"), binary=kubo_binary)
    first.make_private(key)
    first.start()
    try:
        second = ManagedNode(tmp_path_factory.mktemp("private-b"), binary=kubo_binary)
        # No bootstrap list here: Kubo 0.39 does not fetch blocks over a
        # connection it made while bootstrapping (until it is made again).
        second.make_private(key)
        second.start()
        try:
            with second.client() as client:
                client.swarm_connect(first.swarm_addrs()[:1])
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def _config(repo: Path) -> Any:
    return json.loads((repo / "config").read_text())


def test_init_private_makes_or_joins_a_swarm(
    kubo_binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPFSBIN_KUBO_BIN", str(kubo_binary))
    first = cli_host(tmp_path / "first", None)
    made = first("init-private")
    repo = Path(made["repo_path"])
    assert made["created_key"] and made["bootstrap"] == []
    key = (repo / SWARM_KEY_FILE).read_bytes()
    assert parse_swarm_key(key) == key and (repo / SWARM_KEY_FILE).stat().st_mode & 0o077 == 0
    assert made["swarm_key_sha256"] == swarm_key_sha256(key)
    assert (repo / PRIVATE_MARKER).is_file()
    config = _config(repo)
    assert config["Bootstrap"] == [] and config["Routing"]["Type"] == "dht"
    assert config["AutoConf"]["Enabled"] is False and config["AutoTLS"]["Enabled"] is False

    second = cli_host(tmp_path / "second", None)
    joined = second("init-private", "--swarm-key", str(repo / SWARM_KEY_FILE), "--bootstrap", PEER)
    assert not joined["created_key"]
    assert joined["swarm_key_sha256"] == made["swarm_key_sha256"]
    assert _config(Path(joined["repo_path"]))["Bootstrap"] == [PEER]


def test_init_private_refuses_bad_input_and_a_running_node(
    kubo_binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPFSBIN_KUBO_BIN", str(kubo_binary))
    host = cli_host(tmp_path / "host", None)
    bad = tmp_path / "bad.key"
    bad.write_text("/key/swarm/psk/1.0.0/\n/base16/\nnot hex\n")
    error = host("init-private", "--swarm-key", str(bad), ok=False)
    assert "is not a libp2p swarm key" in error and "ipfsbin: hint:" in error
    error = host("init-private", "--swarm-key", str(tmp_path / "missing.key"), ok=False)
    assert "cannot read the swarm key" in error
    error = host("init-private", "--bootstrap", "10.0.0.5:4001", ok=False)
    assert "is not a multiaddr with a peer ID" in error
    assert not (tmp_path / "host" / "kubo" / SWARM_KEY_FILE).exists()

    # A daemon that runs keeps its old key until restarted: refuse and say so.
    # (a process whose command line looks like `<kubo> daemon`, as the pid check wants)
    repo = tmp_path / "host" / "kubo"
    repo.mkdir(parents=True, exist_ok=True)
    (tmp_path / "daemon").write_text("import time\ntime.sleep(60)\n")
    with subprocess.Popen([sys.executable, "daemon"], cwd=tmp_path) as fake:
        try:
            (repo / "ipfsbin-daemon.pid").write_text(f"{fake.pid}\n")
            error = host("init-private", ok=False)
        finally:
            fake.kill()
    assert "reads its swarm key only at start" in error and "ipfsbin node stop" in error
    assert not (repo / SWARM_KEY_FILE).exists()


def test_nodes_sharing_a_key_exchange_an_index_and_a_package(
    private_pair: tuple[ManagedNode, ManagedNode], kubo_nodes: Any, tmp_path: Path
) -> None:
    publisher_node, client_node = private_pair
    maintainer = cli_host(tmp_path / "maintainer", publisher_node)
    client = cli_host(tmp_path / "client", client_node)

    KeyStore(tmp_path / "maintainer" / "keys").generate("m")
    init = maintainer("index", "init", "--key", "m", "--builder", BUILDER_X.key_id)
    data = b"an in-house binpkg\n" * 64
    with publisher_node.client() as kubo:
        assert kubo.add(data, chunker="size-1048576").cid == cid_for(RAW, data)
        published = publish(KuboBlockStore(kubo), "app-misc/inhouse-1", data, BUILDER_X)
    maintainer("index", "add", str(published.attestation.cid))
    maintainer("index", "commit", "-m", "add inhouse", "--key", "m")
    name = maintainer("index", "publish", "--key", "m", "--allow-offline")["name"]

    client("subscribe", name, "--root", init["root"])
    (synced,) = client("sync")
    assert synced["outcome"] == "accepted" and synced["height"] == 2
    with client_node.client() as kubo:
        assert kubo.cat_bytes(cid_for(RAW, data)) == data

    # A node without the key: the handshake fails, so nothing can be fetched.
    (stranger,) = kubo_nodes(1, connect=False)
    address = publisher_node.swarm_addrs()[0]
    refused = stranger.run("swarm", "connect", address, check=False)
    assert refused.returncode != 0 and b"failed to negotiate security protocol" in refused.stderr
    fetch = stranger.run("--timeout=3s", "cat", str(cid_for(RAW, data)), check=False)
    assert fetch.returncode != 0 and fetch.stdout == b""


def test_a_private_node_without_its_key_does_not_start(kubo_binary: Path, tmp_path: Path) -> None:
    node = ManagedNode(tmp_path / "repo", binary=kubo_binary)
    node.make_private(new_swarm_key())
    (node.repo_path / SWARM_KEY_FILE).unlink()
    with pytest.raises(NodeError, match="stopped while starting"):
        node.start(timeout=30)
    assert "private network was not configured but is enforced" in node.log_path.read_text()
