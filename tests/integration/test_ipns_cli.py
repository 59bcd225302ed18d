"""``ipfsbin index publish``, ``subscribe``, ``sync``, ``status`` and ``index republish``
through the command line only, against a real maintainer workspace on three Kubo nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.keys import KeyStore
from tests.integration.cli_host import cli_host
from tests.integration.pin_helpers import follower_kept
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, publish

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_publish_follow_update_and_republish_from_the_command_line(
    kubo_nodes: Any, tmp_path: Path
) -> None:
    publisher_node, mirror_node, client_node, keyed_node = kubo_nodes(4)
    maintainer = cli_host(tmp_path / "maintainer", publisher_node)
    mirror = cli_host(tmp_path / "mirror", mirror_node)
    client = cli_host(tmp_path / "client", client_node)
    # a client that trusts only the maintainer's key: the root comes with the commits
    keyed = cli_host(tmp_path / "keyed", keyed_node)

    KeyStore(tmp_path / "maintainer" / "keys").generate("m")
    init = maintainer("index", "init", "--key", "m", "--builder", BUILDER_X.key_id)
    record = maintainer("index", "publish", "--key", "m", "--allow-offline")
    name = record["name"]
    assert record["sequence"] == 1

    for host in (client, mirror):
        host("subscribe", name, "--root", init["root"])
        (first,) = host("sync")
        assert first["outcome"] == "accepted" and first["height"] == 1
    (maintainer_key,) = init["maintainers"]["keys"]
    assert keyed("subscribe", name, "--root-key", maintainer_key)["roots"] == []
    (first,) = keyed("sync")
    assert first["outcome"] == "accepted" and first["height"] == 1

    with publisher_node.client() as kubo:
        data = b"a binpkg's bytes\n" * 64
        assert kubo.add(data, chunker="size-1048576").cid == cid_for(RAW, data)
        published = publish(KuboBlockStore(kubo), "app-misc/hello-1", data, BUILDER_X)
    maintainer("index", "add", str(published.attestation.cid))
    maintainer("index", "commit", "-m", "add hello", "--key", "m")
    assert maintainer("index", "publish", "--key", "m", "--allow-offline")["sequence"] == 2

    (update,) = client("sync")
    assert update["outcome"] == "accepted" and update["height"] == 2
    assert update["via"] == "changeset"
    (status,) = client("status")
    assert status["height"] == 2 and status["error"] is None
    (keyed_update,) = keyed("sync")
    assert keyed_update["outcome"] == "accepted" and keyed_update["head"] == update["head"]
    (keyed_status,) = keyed("status")
    assert keyed_status["roots"] == [init["root"]] and keyed_status["error"] is None
    assert keyed_status["pin"] == f"maintainer key {maintainer_key}"

    # Nothing new published: the next round changes nothing.
    (again,) = client("sync")
    assert again["outcome"] == "current"

    # The mirror re-puts the publisher's record unchanged, so newcomers resolve it.
    (mirrored,) = mirror("sync")
    assert mirrored["height"] == 2
    again_record = mirror("index", "republish", name, "--allow-offline")
    assert again_record["sequence"] == 2 and again_record["name"] == name

    # The client has no index of its own to publish: one clear line with the way out.
    error = client("index", "publish", "--key", "m", ok=False)
    assert "ipfsbin: error:" in error and "ipfsbin index init" in error


def _pins(node: ManagedNode) -> dict[str, str]:
    """Every pin of the node: CID text -> type."""
    with node.client() as kubo:
        return {str(p.cid): p.type for p in kubo.pin_ls(pin_type="all") if p.type != "indirect"}


def _follower_keeps(node: ManagedNode, cid: str) -> bool:
    with node.client() as kubo:
        return CID.from_text(cid).multihash in follower_kept(kubo)


def test_a_maintainer_follows_its_own_index_on_the_same_node(
    kubo_nodes: Any, tmp_path: Path
) -> None:
    # the workspace pins its head and root recursively; the follower holds the same
    # envelopes too: Kubo keeps one pin per CID, so both must account in one scheme
    (node,) = kubo_nodes(1)
    host = cli_host(tmp_path / "host", node)
    KeyStore(tmp_path / "host" / "keys").generate("m")
    init = host("index", "init", "--key", "m", "--builder", BUILDER_X.key_id)
    name = host("index", "publish", "--key", "m", "--allow-offline")["name"]
    host("subscribe", name, "--root", init["root"])
    (first,) = host("sync")
    assert first["outcome"] == "accepted", first
    first_head = host("index", "status")["head"]

    with node.client() as kubo:
        data = b"another binpkg\n" * 64
        kubo.add(data, chunker="size-1048576")
        published = publish(KuboBlockStore(kubo), "app-misc/hello-1", data, BUILDER_X)
    host("index", "add", str(published.attestation.cid))
    host("index", "commit", "-m", "add hello", "--key", "m")
    # the workspace moved its recursive pin off the first head; the follower still holds it
    assert first_head not in _pins(node) and _follower_keeps(node, first_head)
    host("index", "publish", "--key", "m", "--allow-offline")
    (second,) = host("sync")
    assert second["outcome"] == "accepted", second
    assert first_head not in _pins(node) and not _follower_keeps(node, first_head)
    second_head = host("index", "status")["head"]
    assert _pins(node).get(second_head) == "recursive"

    host("unsubscribe", name)
    pins = _pins(node)
    assert pins.get(second_head) == "recursive" and pins.get(init["root"]) == "recursive"
    host("index", "verify")  # exits 0 only when the chain verifies
