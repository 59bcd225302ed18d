"""A real ``ipfsbin sync`` killed with SIGKILL between recording the new head and
releasing the old one's pins: the next sync releases them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.codec.cid import CID
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.keys import KeyStore
from tests.integration.pin_helpers import follower_kept
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, publish

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IPFSBIN = [sys.executable, "-c", "from ipfsbin.cli.main import run; run()"]


def env(home: Path, node: ManagedNode, **extra: str) -> dict[str, str]:
    return {**os.environ, "IPFSBIN_HOME": str(home), "IPFSBIN_API": node.api_multiaddr, **extra}


def run(home: Path, node: ManagedNode, *args: str) -> Any:
    done = subprocess.run(
        [*IPFSBIN, *args, "--json"],
        env=env(home, node),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr or done.stdout
    return json.loads(done.stdout)


def follower_keeps(node: ManagedNode, cid: str) -> bool:
    """Whether the follower's pins keep the block ``cid`` (survives ``repo gc``)."""
    with node.client() as kubo:
        return CID.from_text(cid).multihash in follower_kept(kubo)


def test_pins_left_by_a_sync_killed_after_recording_its_head_are_released_next_time(
    kubo_nodes: Any, tmp_path: Path
) -> None:
    maintainer_node, follower_node = kubo_nodes(2)
    maintainer, follower = tmp_path / "maintainer", tmp_path / "follower"
    KeyStore(maintainer / "keys").generate("m")
    init = run(
        maintainer, maintainer_node, "index", "init", "--key", "m", "--builder", BUILDER_X.key_id
    )
    name = run(maintainer, maintainer_node, "index", "publish", "--key", "m", "--allow-offline")[
        "name"
    ]
    run(follower, follower_node, "subscribe", name, "--root", init["root"])
    (first,) = run(follower, follower_node, "sync")
    assert first["outcome"] == "accepted"
    first_envelope = run(follower, follower_node, "status")[0]["head_envelope"]
    assert follower_keeps(follower_node, first_envelope)

    with maintainer_node.client() as kubo:
        data = b"a package\n" * 100
        kubo.add(data, chunker="size-1048576")
        published = publish(KuboBlockStore(kubo), "app-misc/hello-1", data, BUILDER_X)
    run(maintainer, maintainer_node, "index", "add", str(published.attestation.cid))
    run(maintainer, maintainer_node, "index", "commit", "-m", "two", "--key", "m")
    run(maintainer, maintainer_node, "index", "publish", "--key", "m", "--allow-offline")

    marker = tmp_path / "paused"
    with subprocess.Popen(
        [*IPFSBIN, "sync", "--json"],
        env=env(
            follower,
            follower_node,
            IPFSBIN_PAUSE_AT="after-record",
            IPFSBIN_PAUSE_FILE=str(marker),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as sync:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert sync.poll() is None, sync.stderr.read() if sync.stderr else ""
            assert time.monotonic() < deadline, "the sync never reached the pause point"
            time.sleep(0.05)
        os.kill(sync.pid, signal.SIGKILL)
        assert sync.wait(timeout=30) == -signal.SIGKILL

    (status,) = run(follower, follower_node, "status")
    assert status["height"] == 2  # the new head was recorded before the kill
    assert follower_keeps(follower_node, first_envelope)  # ...and the old pins were not let go

    (again,) = run(follower, follower_node, "sync")
    assert again["outcome"] == "current"
    assert again["blocks_released"] >= 2
    assert not follower_keeps(follower_node, first_envelope)
    assert follower_keeps(follower_node, status["head_envelope"])
    assert CID.from_text(first_envelope)  # a real CID was checked above
