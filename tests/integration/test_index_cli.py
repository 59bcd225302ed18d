"""``ipfsbin index`` end to end against real Kubo: a maintainer node and a co-signer's node."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
import pytest

from ipfsbin.cli.main import main
from ipfsbin.codec.cid import CID, RAW, cid_for
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.keys import KeyStore, SigningKey
from tests.unit.maintainer.maintainer_helpers import (
    BUILDER_X,
    descriptor,
    forged,
    make_manifest,
    publish,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Cli = Callable[..., tuple[int, str, str]]


@dataclass
class Env:
    maintainer: ManagedNode
    cosigner: ManagedNode
    client: KuboClient
    run: Cli  # on the maintainer's host
    run_cosigner: Cli  # on the co-signer's host (another IPFSBIN_HOME, another node)
    keys: dict[str, SigningKey]


def _runner(home: Path, node: ManagedNode) -> Cli:
    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("IPFSBIN_HOME", str(home))
            mp.setenv("IPFSBIN_API", node.api_multiaddr)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture(scope="module")
def env(kubo_nodes: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    maintainer, cosigner = kubo_nodes(2)
    home, other_home = tmp_path_factory.mktemp("maint-home"), tmp_path_factory.mktemp("cosign-home")
    keys = {}
    for name in ("a", "b"):
        keys[name] = KeyStore(home / "keys").generate(name)
    keys["c"] = KeyStore(other_home / "keys").generate("c")
    with maintainer.client() as client:
        yield Env(
            maintainer=maintainer,
            cosigner=cosigner,
            client=client,
            run=_runner(home, maintainer),
            run_cosigner=_runner(other_home, cosigner),
            keys=keys,
        )


def _ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def _json(result: tuple[int, str, str]) -> Any:
    return json.loads(_ok(result))


def _publish(client: KuboClient, cpv: str, data: bytes, **kw: Any) -> Any:
    """A builder's publish: the binpkg added as a UnixFS file, the blocks put into Kubo."""
    added = client.add(data, name=f"{cpv.split('/')[1]}.gpkg.tar", chunker="size-1048576")
    assert added.cid == cid_for(RAW, data)  # small file: one raw leaf, as the schema says
    return publish(KuboBlockStore(client), cpv, data, BUILDER_X, **kw)


def test_init_add_commit_cosign_yank_verify_export(env: Env, tmp_path: Path) -> None:
    a, b, c = env.keys["a"], env.keys["b"], env.keys["c"]
    init = _json(
        env.run(
            "index", "init", "--key", "a", "--key", "b", "--maintainer", c.key_id,
            "--threshold", "2", "--builder", BUILDER_X.key_id, "--json",
        )
    )  # fmt: skip
    assert init["maintainers"] == {"keys": sorted([a.key_id, b.key_id, c.key_id]), "threshold": 2}
    assert init["builders"]["keys"] == [BUILDER_X.key_id]
    root, first_head = CID.from_text(init["root"]), CID.from_text(init["head"])
    assert env.client.is_pinned(root) and env.client.is_pinned(first_head)
    text = _ok(env.run("index", "status"))
    assert "2 of 3 maintainers" in text and "staged 0 change(s)" in text

    hello = _publish(env.client, "app-misc/hello-1", b"hello, binary world\n" * 50)
    (added,) = _json(env.run("index", "add", str(hello.attestation.cid), "--json"))
    assert added["action"] == "add" and added["accepted"][0]["builders"] == [BUILDER_X.key_id]
    key = added["key"]

    # 2 of 3: one signature leaves a draft ...
    draft = _json(env.run("index", "commit", "-m", "add hello", "--key", "a", "--json"))
    assert not draft["head"] and draft["signed_by"] == [a.key_id]
    assert env.client.is_pinned(CID.from_text(draft["envelope"]))
    # the commit links its batch as a changeset, stored and pinned (through the commit) with it
    assert len(draft["changeset"]) == 1
    assert env.client.is_pinned(CID.from_text(draft["changeset"][0]), pin_type="all")
    # ... a co-signer on another host fetches it over IPFS and signs ...
    cosigned = _json(
        env.run_cosigner("index", "sign", draft["envelope"], "--key", "c", "--standalone", "--json")
    )
    assert cosigned["threshold_met"] and not cosigned["head"]
    # ... and the maintainer picks the co-signed envelope up: it becomes the head.
    picked = _json(env.run("index", "sign", cosigned["envelope"], "--json"))
    assert picked["head"] and sorted(picked["signed_by"]) == sorted([a.key_id, c.key_id])
    assert env.client.is_pinned(CID.from_text(picked["envelope"]))
    assert not env.client.is_pinned(first_head)

    libfoo = _publish(env.client, "dev-libs/libfoo-2", b"libfoo bytes\n" * 30)
    _ok(env.run("index", "add", str(libfoo.attestation.cid)))
    draft = _json(env.run("index", "commit", "-m", "add libfoo", "--key", "a", "--json"))
    out = _ok(env.run("index", "sign", draft["envelope"], "--key", "b"))
    assert out.startswith("head ") and "signed by 2 of 2" in out

    yank = _ok(env.run("index", "yank", key, "--reason", "miscompiled"))
    assert "miscompiled" in yank
    draft = _json(env.run("index", "commit", "-m", "yank hello", "--key", "b", "--json"))
    _ok(env.run("index", "sign", draft["envelope"], "--key", "a"))

    log = _json(env.run("index", "log", "--json"))
    assert [e["height"] for e in log] == [4, 3, 2, 1]
    assert [e["message"] for e in log] == [
        "yank hello",
        "add libfoo",
        "add hello",
        "Initialize index",
    ]
    assert (log[0]["added"], log[0]["changed"], log[1]["added"]) == (0, 1, 1)
    assert len(_json(env.run("index", "log", "-n", "2", "--json"))) == 2
    assert "Signed:   " in _ok(env.run("index", "log"))

    diff = _ok(env.run("index", "diff", "HEAD~3", "HEAD"))
    assert f"+ {key}  (yanked; 1 attestation(s); reason: miscompiled)" in diff
    assert _ok(env.run("index", "diff", "HEAD~1")).strip() == (
        f"~ {key}  (state ok -> yanked (miscompiled))"
    )
    shown = _ok(env.run("index", "show", key))
    assert "state  yanked (miscompiled)" in shown and "reproduced by 1 builder" in shown
    head = _json(env.run("index", "show", "--json"))
    assert len(head["entries"]) == 2 and head["message"] == "yank hello"

    verdict = _ok(env.run("index", "verify"))
    assert verdict.startswith("OK: 4 commit(s) verified")

    target = tmp_path / "audit"
    exported = _json(env.run("index", "export-git", str(target), "--json"))
    assert exported["exported"] == 4 and exported["total"] == 4
    git_log = subprocess.run(
        ["git", "-C", str(target), "log", "--format=%s", "ipfsbin"],  # noqa: S607
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    assert git_log[:4] == ["yank hello", "add libfoo", "add hello", "Initialize index"]
    files = subprocess.run(
        ["git", "-C", str(target), "ls-files"],
        capture_output=True,
        text=True,
        check=True,  # noqa: S607
    ).stdout.split()
    assert len(files) == 2 and key in files
    repo = pygit2.Repository(str(target))
    assert "state: yanked" in (target / key).read_text()
    assert sum(1 for _ in repo.walk(repo.head.target)) == 4
    assert _json(env.run("index", "export-git", str(target), "--json"))["exported"] == 0


def test_bad_input_is_refused_and_nothing_is_staged(env: Env) -> None:
    if env.run("index", "status")[0] != 0:
        _ok(env.run("index", "init", "--key", "a", "--builder", BUILDER_X.key_id))
    client = env.client
    # bytes behind the CID differ from what the manifest says (a multi-chunk file)
    real = b"R" * (1024 * 1024 + 10)
    added = client.add(real, name="real.gpkg.tar", chunker="size-1048576")
    desc = descriptor("app-misc/evil-1")
    claimed = b"C" * (1024 * 1024 + 10)
    lie = make_manifest(desc, claimed, binpkg=added.cid)
    evil = publish(
        KuboBlockStore(client), "app-misc/evil-1", b"", BUILDER_X, desc=desc, manifest=lie
    )
    code, _, err = env.run("index", "add", str(evil.attestation.cid))
    assert code == 1
    assert f"ipfsbin: error: the bytes behind binpkg {added.cid} do not match manifest" in err

    good = _publish(client, "app-misc/good-1", b"good bytes")
    bad = forged(good.attestation)
    KuboBlockStore(client).put_many(bad.blocks())
    code, _, err = env.run("index", "add", str(bad.cid))
    assert code == 1 and "does not verify" in err

    assert _json(env.run("index", "status", "--json"))["staged"] == []
    code, _, err = env.run("index", "commit", "-m", "nothing", "--key", "a")
    assert code == 1 and "ipfsbin: error: nothing staged to commit" in err
    assert "ipfsbin: hint:" in err
