"""Managed Kubo daemons: the test harness node and the user's detached default node."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ipfsbin.errors import KuboUnavailableError, NodeError
from ipfsbin.kubo.daemon import (
    connect,
    resolve_api,
    start_user_node,
    stop_user_node,
    user_node_status,
    user_repo_path,
)
from ipfsbin.kubo.node import ManagedNode

pytestmark = pytest.mark.integration


def test_a_managed_node_starts_serves_and_stops(kubo_binary: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    node = ManagedNode(repo, binary=kubo_binary, extra_config={"Ipns.MaxCacheTTL": "1s"})
    with node:
        assert node.running
        assert node.api_multiaddr.startswith("/ip4/127.0.0.1/tcp/")
        with node.client() as client:
            assert client.id().peer_id == node.peer_id
        config = json.loads((repo / "config").read_text())
        assert config["Routing"]["Type"] == "dht"
        assert config["Ipns"]["MaxCacheTTL"] == "1s"
        assert config["Bootstrap"] == []  # the test profile
    assert not node.running
    assert not (repo / "api").exists()
    assert not node.pid_path.exists()


def test_a_killed_node_can_be_started_again(kubo_binary: Path, tmp_path: Path) -> None:
    node = ManagedNode(tmp_path / "repo", binary=kubo_binary)
    node.start()
    peer = node.peer_id
    node.kill()
    assert (tmp_path / "repo" / "api").exists()  # stale, left by SIGKILL
    with pytest.raises(KuboUnavailableError):
        with node.client(timeout=2.0) as client:
            client.id()
    with node:
        with node.client() as client:
            assert client.id().peer_id == peer


def test_a_daemon_that_cannot_start_reports_its_log(kubo_binary: Path, tmp_path: Path) -> None:
    node = ManagedNode(tmp_path / "repo", binary=kubo_binary)
    node.init()
    (tmp_path / "repo" / "config").write_text("{ not json")
    with pytest.raises(NodeError, match="stopped while starting") as caught:
        node.start(timeout=30)
    assert caught.value.hint is not None
    assert not node.running


def test_the_ipfs_command_line_reaches_the_node(kubo_node: ManagedNode, ipfs_cli) -> None:  # type: ignore[no-untyped-def]
    with kubo_node.client() as client:
        cid = client.add(b"via the api").cid
    assert ipfs_cli(kubo_node, "cat", str(cid)) == b"via the api"


@pytest.fixture
def user_home(kubo_binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("IPFSBIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IPFSBIN_KUBO_BIN", str(kubo_binary))
    monkeypatch.delenv("IPFSBIN_API", raising=False)
    yield tmp_path / "home"
    stop_user_node()


def test_the_user_node_starts_detached_and_stops_later(user_home: Path) -> None:
    assert not user_node_status().running
    with pytest.raises(KuboUnavailableError, match="not running") as caught:
        resolve_api()
    assert caught.value.hint is not None and "ipfsbin node start" in caught.value.hint

    started = start_user_node(profile="test")

    assert started.running
    assert started.repo_path == user_repo_path() == user_home / "kubo"
    assert started.kubo_version == "0.39.0"
    assert started.api is not None and started.api.startswith("/ip4/127.0.0.1/tcp/")
    assert (user_home / "kubo" / "daemon.log").exists()
    assert resolve_api() == started.api
    with connect() as client:
        assert client.id().peer_id == started.peer_id
    assert start_user_node(profile="test").pid == started.pid  # already running: no-op

    assert stop_user_node() is True
    assert not user_node_status().running
    assert stop_user_node() is False
    with pytest.raises(KuboUnavailableError):
        resolve_api()


def test_ipfsbin_api_overrides_the_managed_node(
    user_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPFSBIN_API", "/ip4/127.0.0.1/tcp/5999")
    assert resolve_api() == "/ip4/127.0.0.1/tcp/5999"
    assert not (user_home / "kubo").exists()


def test_a_stale_pid_file_does_not_count_as_running(user_home: Path) -> None:
    repo = user_home / "kubo"
    repo.mkdir(parents=True)
    (repo / "api").write_text("/ip4/127.0.0.1/tcp/9\n")
    (repo / "ipfsbin-daemon.pid").write_text(f"{os.getpid()}\n")  # alive, but not a daemon
    assert not user_node_status().running
    with pytest.raises(KuboUnavailableError, match="not running any more"):
        resolve_api()


def test_concurrent_starts_share_one_daemon(user_home: Path) -> None:
    # Two `ipfsbin node start` at once: the second must wait for the first
    # daemon, not spawn another on the same repo and lose the pid file.
    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = list(pool.map(lambda _: start_user_node(profile="test"), range(2)))
    assert all(s.running for s in statuses)
    assert statuses[0].pid == statuses[1].pid
    assert (user_home / "kubo" / "ipfsbin-daemon.pid").read_text().strip() == str(statuses[0].pid)
    assert stop_user_node() is True
    assert not user_node_status().running
