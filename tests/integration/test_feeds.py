"""Builder feeds, ``index pull`` and ``ipfsbin challenge`` through the command line, on
four real Kubo nodes with binpkgs from real ``emerge --buildpkg`` runs.

Builder X publishes the playground's ``dev-libs/libfoo-1`` and
``app-misc/usetest-1``; builder Y publishes the very same libfoo file and its
own rebuild of usetest (same descriptor, other bytes: Portage records the
build time in the package). Each appends to its feed and publishes it under
its key's IPNS name; a maintainer pulls both feeds under each policy.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.catalog import read_heads
from ipfsbin.cli.main import main
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.keys import parse_index_key
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.subscribe.follower import Follower
from ipfsbin.trust.keys import KeyStore
from tests.playground.builder import BuilderPlayground
from tests.playground.fixtures import builder_playground  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LIBFOO, USETEST = "dev-libs/libfoo-1", "app-misc/usetest-1"
Run = Callable[..., tuple[int, str, str]]


def _host(home: Path, node: ManagedNode, configroot: Path) -> Run:
    """``ipfsbin ARGS`` in-process as one host: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("IPFSBIN_HOME", str(home))
            mp.setenv("IPFSBIN_API", node.api_multiaddr)
            mp.setenv("PORTAGE_CONFIGROOT", str(configroot))
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    return run


def _json(run: Run, *args: str, code: int = 0) -> Any:
    got, out, err = run(*args, "--json")
    assert got == code, err or out
    return json.loads(out)


class World:
    def __init__(self, tmp: Path, nodes: list[ManagedNode], playground: BuilderPlayground):
        self.tmp = tmp
        self.playground = playground
        x_node, y_node, m_node, c_node = nodes
        root = playground.eprefix
        self.x = _host(tmp / "x", x_node, root)
        self.y = _host(tmp / "y", y_node, root)
        self.m = _host(tmp / "m", m_node, root)
        self.c = _host(tmp / "c", c_node, root)
        self.c_home, self.c_node, self.m_node, self.x_node = tmp / "c", c_node, m_node, x_node
        self.x_key = KeyStore(tmp / "x" / "keys").generate("bx").key_id
        self.y_key = KeyStore(tmp / "y" / "keys").generate("by").key_id
        KeyStore(tmp / "m" / "keys").generate("m")

    def share(self, run: Run, key: str, paths: list[Path]) -> dict[str, str]:
        """Publish ``paths``, append them to the builder's feed, publish the feed."""
        published = _json(run, "publish", *map(str, paths), "--key", key)
        attestations = {r["cpv"]: r["attestation"] for r in published}
        head = _json(run, "feed", "append", *attestations.values(), "--key", key)
        assert len(head["added"]) == len(paths)
        record = _json(run, "feed", "publish", "--key", key, "--allow-offline")
        assert record["sequence"] == head["height"]
        return {**{r["cpv"]: r["sha256"] for r in published}, "name": record["name"]}


@pytest.fixture(scope="module")
def world(
    kubo_nodes: Any,
    tmp_path_factory: pytest.TempPathFactory,
    builder_playground: BuilderPlayground,  # noqa: F811
) -> World:
    tmp = tmp_path_factory.mktemp("feeds")
    w = World(tmp, kubo_nodes(4), builder_playground)
    libfoo = builder_playground.binpkgs[LIBFOO]
    usetest = builder_playground.binpkgs[USETEST]
    w.x_shared = w.share(w.x, "bx", [libfoo, usetest])
    # Y: the very same libfoo file, and its own rebuild of usetest
    y_dir = tmp / "y-pkgdir"
    y_dir.mkdir()
    shutil.copy(libfoo, y_dir / libfoo.name)
    rebuilt = builder_playground.build_binpkg("=" + USETEST, tmp / "y-rebuild")
    w.y_shared = w.share(w.y, "by", [y_dir / libfoo.name, rebuilt])
    assert w.x_shared[LIBFOO] == w.y_shared[LIBFOO]
    assert w.x_shared[USETEST] != w.y_shared[USETEST]
    return w


def _policy(tmp: Path, rule: str) -> str:
    path = tmp / f"{rule}.toml"
    path.write_text(f'min_builders = 1\non_disagreement = "{rule}"\n')
    return str(path)


def _init(w: World, index: str) -> dict[str, Any]:
    return _json(
        w.m, "index", "init", "--index", index, "--key", "m",
        "--builder", w.x_key, "--builder", w.y_key,
    )  # fmt: skip


def _pull(w: World, index: str, rule: str, code: int = 2) -> Any:
    feeds = (w.x_shared["name"], w.y_shared["name"])
    return _json(
        w.m, "index", "pull", *feeds, "--index", index, "--policy", _policy(w.tmp, rule), code=code
    )


def _by_cpv(rows: list[dict[str, Any]], field: str = "cpv") -> dict[str, dict[str, Any]]:
    return {row[field]: row for row in rows}


def test_keep_both_reports_the_difference_and_a_following_client_sees_the_entries(
    world: World,
) -> None:
    w = world
    init = _init(w, "keep")
    result = _pull(w, "keep", "keep-both")
    assert [f["added"] for f in result["feeds"]] == [2, 2]
    items = _by_cpv(result["challenge"]["items"], "item")
    assert items[LIBFOO]["verdict"] == "identical"
    assert items[USETEST]["verdict"] == "differing"
    hashes = {b["builder"]: b["sha256"] for b in items[USETEST]["builders"]}
    assert hashes == {w.x_key: w.x_shared[USETEST], w.y_key: w.y_shared[USETEST]}
    assert result["challenge"]["summary"] == {
        "analyzed": 2,
        "identical": 1,
        "differing": 1,
        "inconclusive": 0,
    }
    decisions = _by_cpv(result["decisions"])
    assert decisions[LIBFOO]["action"] == "merged"
    assert decisions[USETEST]["action"] == "merged"
    assert len(decisions[USETEST]["attestations"]) == 2

    # nothing new in the feeds: the next pull decides nothing and exits 0
    again = _pull(w, "keep", "keep-both", code=0)
    assert again["decisions"] == [] and [f["added"] for f in again["feeds"]] == [0, 0]

    _json(w.m, "index", "commit", "--index", "keep", "-m", "pulled from two builders", "--key", "m")
    name = _json(w.m, "index", "publish", "--index", "keep", "--key", "m", "--allow-offline")[
        "name"
    ]
    _json(w.c, "subscribe", name, "--root", init["root"])
    (synced,) = _json(w.c, "sync")
    assert synced["outcome"] == "accepted" and synced["height"] == 2
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPFSBIN_HOME", str(w.c_home))
        mp.setenv("IPFSBIN_API", w.c_node.api_multiaddr)
        with Follower() as follower:
            (head,) = read_heads(
                follower.subscriptions(), follower.held_blocks(), freshness=follower.freshness
            )
            tree = ProllyTree(follower.held_blocks())
            entries = {
                parse_index_key(k).cpv: IndexEntry.from_dag(v)
                for k, v in tree.items(head.index_root)
            }
    assert set(entries) == {LIBFOO, USETEST}
    assert len(entries[USETEST].attestations) == 2
    w.index_name, w.index_root = name, init["root"]


def test_majority_without_a_majority_leaves_the_difference_pending(world: World) -> None:
    _init(world, "major")
    result = _pull(world, "major", "majority")
    decisions = _by_cpv(result["decisions"])
    assert decisions[LIBFOO]["action"] == "merged"
    assert decisions[USETEST]["action"] == "pending"
    assert "no majority" in decisions[USETEST]["reason"]
    status = _json(world.m, "index", "status", "--index", "major")
    assert [s["state"] for s in status["staged"]] == ["ok"]


def test_yank_and_flag_prints_the_challenge_report(world: World) -> None:
    w = world
    _init(w, "yank")
    feeds = (w.x_shared["name"], w.y_shared["name"])
    policy = _policy(w.tmp, "yank-and-flag")
    code, out, err = w.m("index", "pull", *feeds, "--index", "yank", "--policy", policy)
    assert code == 2, err
    assert f"{USETEST} contents differ:" in out
    assert f"  {w.x_key}: {w.x_shared[USETEST]}" in out
    assert f"  {w.y_key}: {w.y_shared[USETEST]}" in out
    assert LIBFOO + " contents" not in out  # identical items only with --verbose
    assert "2 items were analyzed:" in out
    assert "  - 1 (50.0%) were identical" in out
    assert "  - 1 (50.0%) differed" in out
    assert "  - 0 (0.0%) were inconclusive" in out
    status = _json(w.m, "index", "status", "--index", "yank")
    assert sorted(s["state"] for s in status["staged"]) == ["ok", "yanked"]


def test_challenge_compares_this_hosts_builds(world: World) -> None:
    w = world
    pkgdir = str(w.playground.pkgdir)
    # builder X follows the index it contributed to; its PKGDIR holds its own builds
    _json(w.x, "subscribe", w.index_name, "--root", w.index_root)
    _json(w.x, "sync")
    report = _json(w.x, "challenge", LIBFOO, USETEST, "--pkgdir", pkgdir, code=2)
    items = _by_cpv(report["items"], "item")
    assert items[LIBFOO]["verdict"] == "identical"
    assert items[LIBFOO]["local"] == w.x_shared[LIBFOO]
    assert items[USETEST]["verdict"] == "differing"
    assert items[USETEST]["local"] == w.x_shared[USETEST]
    assert {b["builder"] for b in items[USETEST]["builders"]} == {w.x_key, w.y_key}
    assert "built here" in items[USETEST]["note"]

    only_same = _json(w.x, "challenge", "dev-libs/libfoo", "--pkgdir", pkgdir, code=0)
    assert only_same["summary"]["identical"] == 1 and only_same["summary"]["analyzed"] == 1

    code, out, _ = w.x("challenge", "--pkgdir", pkgdir, "--verbose")
    assert code == 2
    assert f"{USETEST} contents differ:" in out and f"{LIBFOO} contents identical:" in out
    assert "  local hash: " + w.x_shared[USETEST] in out
    assert "were inconclusive" in out  # the playground's other packages are in no index

    # installed from the binary (Portage records the binpkg's MD5): challenged without PKGDIR.
    # Portage fixes EPREFIX at import, so the playground's installed packages are read in a
    # process of their own.
    w.playground.emerge("--oneshot", "--usepkgonly", "=" + LIBFOO, "=" + USETEST)
    empty = w.tmp / "empty-pkgdir"
    empty.mkdir()
    env = {
        **os.environ,
        **w.playground.env(),
        "PATH": os.environ["PATH"],
        "PORTAGE_CONFIGROOT": str(w.playground.eprefix),
        "IPFSBIN_HOME": str(w.tmp / "x"),
        "IPFSBIN_API": w.x_node.api_multiaddr,
    }
    command = [sys.executable, "-m", "ipfsbin.cli.main", "challenge", LIBFOO, USETEST, "--json"]
    done = subprocess.run(  # noqa: S603 - our own entry point
        [*command, "--pkgdir", str(empty)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2, done.stderr
    items = _by_cpv(json.loads(done.stdout)["items"], "item")
    assert items[LIBFOO]["verdict"] == "identical"
    assert items[USETEST]["verdict"] == "differing"
    assert items[USETEST]["local"] == w.x_shared[USETEST]
    assert items[USETEST]["note"].startswith("installed binary here")
    # without --pkgdir: Portage's PKGDIR, whose binpkgs are the installed ones (counted once)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout)
    assert report["pkgdir"] == str(w.playground.pkgdir)
    assert report["summary"]["analyzed"] == 2


def test_pull_follow_runs_rounds_until_sigterm(world: World) -> None:
    w = world
    _init(w, "svc")
    env = {
        **os.environ,
        "IPFSBIN_HOME": str(w.tmp / "m"),
        "IPFSBIN_API": w.m_node.api_multiaddr,
        "PORTAGE_CONFIGROOT": str(w.playground.eprefix),
    }
    feeds = (w.x_shared["name"], w.y_shared["name"])
    args = ["index", "pull", *feeds, "--index", "svc", "--follow", "--interval", "1s", "--json"]
    with subprocess.Popen(  # noqa: S603 - our own entry point
        [sys.executable, "-m", "ipfsbin.cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as service:
        assert service.stdout is not None
        first = json.loads(service.stdout.readline())  # one JSON line per round
        assert {d["cpv"] for d in first["decisions"]} == {LIBFOO, USETEST}
        second = json.loads(service.stdout.readline())
        assert second["decisions"] == []  # nothing new since the first round
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0
    status = _json(w.m, "index", "status", "--index", "svc")
    assert len(status["staged"]) == 2


def test_a_rewritten_feed_is_refused_with_one_line(world: World) -> None:
    w = world
    # builder X loses its feed state and starts over: a new history under the same name
    (w.tmp / "x" / "feeds" / f"{w.x_key}.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (w.tmp / "x" / "feeds" / f"{w.x_key}.sqlite{suffix}").unlink(missing_ok=True)
    published = _json(w.x, "publish", str(w.playground.binpkgs[LIBFOO]), "--key", "bx")
    _json(w.x, "feed", "append", published[0]["attestation"], "--key", "bx")
    usetest = _json(w.x, "publish", str(w.playground.binpkgs[USETEST]), "--key", "bx")
    head = _json(w.x, "feed", "append", usetest[0]["attestation"], "--key", "bx")
    assert head["height"] == 3  # above the height the maintainer accepted
    _json(w.x, "feed", "publish", "--key", "bx", "--allow-offline")

    code, _, err = w.m("index", "pull", w.x_shared["name"], "--index", "keep")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("ipfsbin: error: ") and "history was rewritten" in lines[0]
    assert lines[1].startswith("ipfsbin: hint: ")
    # a follower that never saw the old feed checks the new one whole and accepts it
    shown = _json(w.c, "feed", "show", w.x_shared["name"])
    assert shown["height"] == 3 and len(shown["entries"]) == 2
