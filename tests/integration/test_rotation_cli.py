"""``ipfsbin index rotate-root`` / ``sign-root`` through the command line on real Kubo nodes:
a follower pinned to the old maintainer key takes the rotation from the commit envelope,
and then refuses a commit signed by the revoked key."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.cli.main import main
from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.ipns.publish import PublishedRecord, publish_head
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.commit import load_commit, make_commit, put_commit, sign_commit
from ipfsbin.trust.keys import KeyStore, SigningKey
from ipfsbin.trust.root import load_root
from tests.unit.maintainer.maintainer_helpers import BUILDER_X, publish

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Cli = Callable[..., Any]


def _host(home: Path, node: ManagedNode) -> Cli:
    """Run ``ipfsbin ARGS --json`` as one host and return the decoded output."""

    def run(*args: str, ok: bool = True) -> Any:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("IPFSBIN_HOME", str(home))
            mp.setenv("IPFSBIN_API", node.api_multiaddr)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([*args, "--json"])
        assert (code == 0) == ok, err.getvalue()
        # a refused sync still reports its outcome as JSON on stdout
        return json.loads(out.getvalue()) if out.getvalue() else err.getvalue()

    return run


def _publish_on_top(
    node: ManagedNode, key: SigningKey, head: str, root: str, *, keep_roots: int | None
) -> PublishedRecord:
    """Sign a commit on ``head`` under ``root`` with ``key`` alone and publish it.

    Its envelope lists the head's roots (the first ``keep_roots`` of them, when
    given) and then ``root``: what someone holding ``key`` can make.
    """
    with node.client() as kubo:
        store = KuboBlockStore(kubo)
        parent = load_commit(store, CID.from_text(head))
        signed_root = load_root(store, CID.from_text(root))
        listed = (
            parent.roots if keep_roots is None else (*parent.roots[:keep_roots], signed_root.cid)
        )
        attack = sign_commit(
            make_commit(
                index=parent.commit.index,
                root=signed_root,
                time=parent.commit.time + 1,
                parents=(parent,),
                message=f"by {key.key_id}",
            ),
            key,
            roots=listed,
        )
        put_commit(store, attack)
        return publish_head(kubo, key, head=attack, root=signed_root, allow_offline=True)


def test_rotate_root_and_a_key_pinned_follower_takes_it(kubo_nodes: Any, tmp_path: Path) -> None:
    maintainer_node, client_node = kubo_nodes(2)
    maintainer = _host(tmp_path / "maintainer", maintainer_node)
    client = _host(tmp_path / "client", client_node)
    keys = KeyStore(tmp_path / "maintainer" / "keys")
    key_a, key_b = keys.generate("a"), keys.generate("b")

    init = maintainer("index", "init", "--key", "a", "--builder", BUILDER_X.key_id)
    name = maintainer("index", "publish", "--key", "a", "--allow-offline")["name"]
    assert name == key_a.key_id
    client("subscribe", name, "--root-key", key_a.key_id)
    (first,) = client("sync")
    assert first["outcome"] == "accepted" and first["height"] == 1

    # A alone meets the old threshold but not the new one: a draft that B must co-sign
    draft = maintainer(
        "index", "rotate-root", "--add-maintainer", "b", "--remove-maintainer", "a", "--key", "a"
    )
    assert not draft["adopted"] and draft["version"] == 2
    assert draft["old_maintainers"]["met"] and not draft["new_maintainers"]["met"]
    assert draft["publishers"]["keys"] == [key_a.key_id]
    assert maintainer("index", "status")["draft_root"] == draft["envelope"]
    error = maintainer("index", "sign-root", draft["envelope"], "--key", "nobody", ok=False)
    assert "ipfsbin: error:" in error
    adopted = maintainer("index", "sign-root", draft["envelope"], "--key", "b")
    assert adopted["adopted"] and adopted["maintainers"]["keys"] == [key_b.key_id]
    status = maintainer("index", "status")
    assert status["root_version"] == 2 and status["draft_root"] is None
    assert status["roots"] == [init["root"], adopted["envelope"]]

    refused = maintainer("index", "rotate-root", "--threshold", "1", "--key", "a", ok=False)
    assert "maintainer of neither" in refused

    with maintainer_node.client() as kubo:
        data = b"a binpkg's bytes\n" * 64
        assert kubo.add(data, chunker="size-1048576").cid == cid_for(RAW, data)
        published = publish(KuboBlockStore(kubo), "app-misc/hello-1", data, BUILDER_X)
    assert published.attestation is not None
    maintainer("index", "add", str(published.attestation.cid))
    assert "is not a maintainer" in maintainer(
        "index", "commit", "-m", "by A", "--key", "a", ok=False
    )
    done = maintainer("index", "commit", "-m", "under root 2", "--key", "b")
    assert done["head"] and done["signed_by"] == [key_b.key_id]
    # publishers did not follow the maintainers: A still signs the IPNS record
    assert maintainer("index", "publish", "--allow-offline")["sequence"] == 2
    assert maintainer("index", "verify")["verdict"].startswith("OK")

    (update,) = client("sync")
    assert update["outcome"] == "accepted" and update["height"] == 2, update
    (followed,) = client("status")
    assert followed["error"] is None and followed["height"] == 2
    assert followed["roots"] == [init["root"], adopted["envelope"]]

    # An attacker holding the publisher key A (a revoked maintainer) signs a commit on top
    # and publishes it: the follower refuses it and keeps the good head.
    record = _publish_on_top(
        maintainer_node, key_a, done["envelope"], adopted["envelope"], keep_roots=None
    )
    assert record.sequence == 3
    (refusal,) = client("sync", ok=False)
    assert refusal["outcome"] != "accepted" and refusal["height"] == 2
    (after,) = client("status")
    assert "RevokedKeyError" in after["error"] and after["height"] == 2
    assert after["head"] == followed["head"]


def test_a_rotation_withheld_by_the_index_name_reaches_a_follower_through_announcements(
    kubo_nodes: Any, tmp_path: Path
) -> None:
    maintainer_node, client_node = kubo_nodes(2)
    maintainer = _host(tmp_path / "maintainer", maintainer_node)
    client = _host(tmp_path / "client", client_node)
    keys = KeyStore(tmp_path / "maintainer" / "keys")
    key_a, key_h = keys.generate("a"), keys.generate("h")

    maintainer("index", "init", "--key", "a", "--builder", BUILDER_X.key_id)
    v2 = maintainer("index", "rotate-root", "--add-maintainer", "h", "--key", "a")
    assert v2["adopted"] and v2["version"] == 2
    maintainer("index", "publish", "--key", "a", "--allow-offline")
    # A's key is stolen, with the IPNS key (the same key here); H rotates A out
    v3 = maintainer("index", "rotate-root", "--remove-maintainer", "a", "--key", "h")
    assert v3["adopted"] and v3["version"] == 3
    (announced,) = maintainer("index", "announce-roots", "--allow-offline")
    assert announced["name"] == key_h.key_id and announced["sequence"] == 3

    # the thief signs a commit under version 2 with A's key and publishes it, listing
    # only the roots up to version 2
    head = maintainer("index", "status")["head"]
    _publish_on_top(maintainer_node, key_a, head, v2["envelope"], keep_roots=1)

    client("subscribe", key_a.key_id, "--root", v2["envelope"])
    (refused,) = client("sync", ok=False)
    assert refused["outcome"] == "refused", (refused["error"], refused["warnings"])
    assert refused["error"].startswith("RevokedKeyError:")
    assert "learned trust root version(s) 3 from the maintainers" in refused["warnings"]
    (status,) = client("status")
    assert status["roots"] == [v2["envelope"], v3["envelope"]] and status["head"] is None
