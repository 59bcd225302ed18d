"""``ipfsbin share``: real emerge builds shared into real Kubo, through the persistent queue.

Sharing is turned on in the config file; from then on ``share --watch``
publishes what emerge writes into PKGDIR, and appends it to the builder's
feed, with no other command; in the same run a maintainer pulls the feed
into an index and a client following that index sees the builds (and the
builder, following it too, does not share the same bytes again). Killed with
SIGKILL while it publishes, the next run finishes the queue: every build
published exactly once and no pin left that the queue does not account for.
Each default filter is shown skipping a real binpkg with its reason.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import io
import json
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.builder.bulk import BATCH_TYPE
from ipfsbin.builder.feed import Feed
from ipfsbin.builder.share import SHARE_HOLDER
from ipfsbin.cli.main import main
from ipfsbin.codec import dagcbor
from ipfsbin.codec.cid import CID
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.manifest import Manifest
from ipfsbin.serve.setup_portage import PortageSetup, setup_share
from ipfsbin.trust.keys import KeyStore
from tests.integration.serve_helpers import ClientHost
from tests.playground.builder import BuilderPlayground
from tests.playground.craft import rewrite_gpkg
from tests.playground.portage_env import missing_host_tools

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
LIBFOO, USETEST = "dev-libs/libfoo-1", "app-misc/usetest-1"
# A patch that adds a file: it applies in any ${S}, and eapply_user records it.
USER_PATCH = """\
--- /dev/null
+++ b/added-by-user
@@ -0,0 +1 @@
+local change
"""


@dataclass
class Share:
    builder: BuilderPlayground
    node: ManagedNode
    client: KuboClient
    home: Path
    pkgdir: Path
    config: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "IPFSBIN_HOME": str(self.home),
            "IPFSBIN_API": self.node.api_multiaddr,
            "IPFSBIN_SYSTEM_CONFIG": str(self.config),
            "PORTAGE_CONFIGROOT": str(self.builder.eprefix),
        }

    def configure(self, text: str) -> None:
        self.config.write_text(text)

    def cli(self, *args: str, home: Path | None = None) -> tuple[int, str, str]:
        """``ipfsbin ARGS`` in-process on this node, as the builder or as the host at ``home``."""
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            for name, value in self.env.items():
                mp.setenv(name, value)
            if home is not None:
                mp.setenv("IPFSBIN_HOME", str(home))
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """Start ``ipfsbin ARGS``; its output goes to a file (a full pipe would stall it)."""
        log = (self.home / "spawned.log").open("a")
        with log:
            return subprocess.Popen(  # noqa: S603 - this interpreter, our own CLI
                [sys.executable, "-m", "ipfsbin.cli.main", *args],
                env={**os.environ, **self.env, "PYTHONPATH": str(ROOT)},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def log(self) -> str:
        return (self.home / "spawned.log").read_text()

    def status(self) -> dict[str, Any]:
        code, out, err = self.cli("share", "--status", "--json")
        assert code == 0, err
        result: dict[str, Any] = json.loads(out)
        return result

    def status_rows(self, state: str) -> list[dict[str, Any]]:
        code, out, err = self.cli("share", "--status", "--json")
        assert code == 0, err
        return [r for r in json.loads(out)["builds"] if r["state"] == state]

    def rows(self) -> list[tuple[str, str, str | None, str | None]]:
        """(path, state, attestation, batch root) of every queue row, as another reader sees it."""
        db = sqlite3.connect(self.home / "share.sqlite")
        try:
            sql = "SELECT path, state, attestation, batch FROM builds ORDER BY id"
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def share_pins(self) -> set[CID]:
        return {p.cid for p in self.client.pin_ls() if p.name == SHARE_HOLDER}

    def ledger_needs(self) -> set[CID]:
        db = sqlite3.connect(self.home / "pins.sqlite")
        try:
            rows = db.execute("SELECT cid FROM needs WHERE holder = ?", (SHARE_HOLDER,))
            return {CID.from_text(r[0]) for r in rows}
        finally:
            db.close()

    def feed_entries(self) -> int:
        """How many attestations the builder's feed holds."""
        key = KeyStore(self.home / "keys").load("builder")
        with Feed.open(self.client, key, self.home / "feeds" / f"{key.key_id}.sqlite") as feed:
            head = feed.head()
        return 0 if head is None else head.entries

    def reset(self) -> None:
        """Empty PKGDIR, the queue, the feed and the pins, for the next test."""
        shutil.rmtree(self.pkgdir)
        self.pkgdir.mkdir()
        for pin in self.client.pin_ls():
            self.client.pin_rm([pin.cid])
        for name in ("share.sqlite", "share.sqlite-wal", "share.sqlite-shm", "pins.sqlite"):
            (self.home / name).unlink(missing_ok=True)
        shutil.rmtree(self.home / "feeds", ignore_errors=True)
        (self.home / "spawned.log").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def share(kubo_node: ManagedNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Share]:
    missing = missing_host_tools()
    if missing:
        pytest.skip(f"the builder playground needs {', '.join(missing)} on PATH")
    home = tmp_path_factory.mktemp("ipfsbin-home")
    KeyStore(home / "keys").generate("builder")
    builder = BuilderPlayground.create()
    try:
        with kubo_node.client() as client:
            yield Share(
                builder=builder,
                node=kubo_node,
                client=client,
                home=home,
                pkgdir=builder.pkgdir,
                config=home / "ipfsbin.toml",
            )
    finally:
        builder.cleanup()


@pytest.fixture
def fresh(share: Share) -> Share:
    share.pkgdir.mkdir(parents=True, exist_ok=True)
    share.reset()
    share.configure(f'share = true\n[sharing]\npkgdir = "{share.pkgdir}"\n')
    return share


def _wait(predicate: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(proc: subprocess.Popen[str]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"share --watch exited {proc.returncode}")
    return True


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _batch_attestations(share: Share, root: CID) -> list[CID]:
    value = dagcbor.decode_block(root, share.client.block_get(root, offline=True))
    assert value["type"] == BATCH_TYPE
    return list(value["attestations"])


def _assert_exactly_once(share: Share, expected: int) -> None:
    """Every build published and announced once; Kubo's pins, the ledger, the queue agree."""
    rows = share.rows()
    published = [r for r in rows if r[1] == "announced"]
    assert len(published) == expected, rows
    assert len({r[0] for r in published}) == expected
    attestations = {CID.from_text(r[2]) for r in published if r[2]}
    assert len(attestations) == expected
    # one pin per batch: its root lists the batch's attestations
    assert all(r[3] for r in published), "every published row names its batch root"
    roots = {CID.from_text(r[3]) for r in published if r[3]}
    assert share.share_pins() == roots
    assert share.ledger_needs() == roots
    listed = [a for root in roots for a in _batch_attestations(share, root)]
    assert sorted(listed, key=str) == sorted(attestations, key=str)
    assert not [r for r in rows if r[1] in ("queued", "publishing", "published")]
    assert share.feed_entries() == expected


# -- sharing without any other command ---------------------------------------------------


def test_sharing_off_is_refused(fresh: Share) -> None:
    fresh.configure("")
    code, _, err = fresh.cli("share")
    assert code == 1
    assert err.splitlines() == [
        "ipfsbin: error: sharing is off",
        f"ipfsbin: hint: opt in with `share = true` at the top of {fresh.config} "
        "(or your own ipfsbin.toml)",
    ]


def _json(share: Share, *args: str, home: Path | None = None, code: int = 0) -> Any:
    got, out, err = share.cli(*args, "--json", home=home)
    assert got == code, err or out
    return json.loads(out)


def test_emerge_builds_reach_a_following_client_with_no_other_command(
    fresh: Share, tmp_path: Path
) -> None:
    """The whole chain in one run: emerge → builder feed → maintainer pull → index → client."""
    proc = fresh.spawn("share", "--watch")
    try:
        _wait(lambda: _alive(proc) and (fresh.home / "share.sqlite").exists(), "the watcher")
        fresh.builder.emerge("--oneshot", "--buildpkg", "--quiet-build=y", "dev-libs/libfoo")
        fresh.builder.emerge("--oneshot", "--buildpkg", "--quiet-build=y", "app-misc/usetest")
        _wait(
            lambda: _alive(proc) and fresh.status()["states"]["announced"] == 2,
            "both builds to be published and announced",
        )
    finally:
        _stop(proc)
    log = fresh.log()
    assert proc.returncode == 0, log
    assert "published dev-libs/libfoo-1" in log and "published app-misc/usetest-1" in log
    _assert_exactly_once(fresh, 2)
    for row in fresh.status_rows("announced"):
        manifest = Manifest.from_block(
            CID.from_text(row["manifest"]), fresh.client.block_get(CID.from_text(row["manifest"]))
        )
        data = fresh.client.cat_bytes(manifest.binpkg)
        assert hashlib.sha256(data).digest() == manifest.sha256
        assert data == Path(row["path"]).read_bytes()
        assert manifest.build.origin == "built"
    # A second catch-up finds nothing new to publish.
    code, out, err = fresh.cli("share", "--json")
    assert code == 0, err
    assert json.loads(out)["published"] == []
    _assert_exactly_once(fresh, 2)

    # A maintainer pulls the builder's feed (by its IPNS name), commits and publishes.
    feed = _json(fresh, "feed", "show")
    assert {e["cpv"] for e in feed["entries"]} == {LIBFOO, USETEST}
    maintainer, client = tmp_path / "maintainer", tmp_path / "client"
    KeyStore(maintainer / "keys").generate("m")
    builder_key = KeyStore(fresh.home / "keys").load("builder").key_id
    init = _json(fresh, "index", "init", "--index", "main", "--key", "m",
                 "--builder", builder_key, home=maintainer)  # fmt: skip
    policy = tmp_path / "policy.toml"
    policy.write_text('min_builders = 1\non_disagreement = "keep-both"\n')
    pulled = _json(fresh, "index", "pull", feed["name"], "--index", "main",
                   "--policy", str(policy), home=maintainer)  # fmt: skip
    assert {d["cpv"]: d["action"] for d in pulled["decisions"]} == {
        LIBFOO: "merged",
        USETEST: "merged",
    }
    _json(fresh, "index", "commit", "--index", "main", "-m", "from the builder's feed",
          "--key", "m", home=maintainer)  # fmt: skip
    index = _json(fresh, "index", "publish", "--index", "main", "--key", "m", "--allow-offline",
                  home=maintainer)["name"]  # fmt: skip

    # A client following the index sees both builds, and its binhost shim lists them.
    _json(fresh, "subscribe", index, "--root", init["root"], home=client)
    (synced,) = _json(fresh, "sync", home=client)
    assert synced["outcome"] == "accepted"
    host = ClientHost(client, fresh.builder, fresh.node.api_multiaddr)
    host.configure()
    with host.serving(portage=False) as served:
        served.wait_listed(index, LIBFOO)
        assert {LIBFOO, USETEST} <= served.listed(index)

    # The builder follows the index too: copies of the very bytes it has are not shared
    # again (the `indexed` filter, with the index's name); other bytes of the same build are.
    _json(fresh, "subscribe", index, "--root", init["root"])
    _json(fresh, "sync")
    copies = fresh.pkgdir / "copies"
    copies.mkdir()
    for path in (Path(r["path"]) for r in fresh.status_rows("announced")):
        shutil.copy(path, copies / path.name)
    libfoo = next(copies.glob("libfoo-*.gpkg.tar"))
    (copies / "other").mkdir()
    rewrite_gpkg(libfoo, copies / "other" / libfoo.name,
                 extra_image=[("image/usr/share/libfoo/other", b"other bytes")])  # fmt: skip
    done = _json(fresh, "share")
    assert done["published"] == [str(copies / "other" / libfoo.name)]
    skipped = {Path(s["path"]).name: (s["filter"], s["reason"]) for s in done["skipped"]}
    assert {name: reason[0] for name, reason in skipped.items()} == {
        "libfoo-1-1.gpkg.tar": "indexed",
        "usetest-1-1.gpkg.tar": "indexed",
    }
    for _, reason in skipped.values():
        assert reason.startswith(f"the followed index {index} already has these bytes")


# -- the default filters, each on a real binpkg ----------------------------------------------


def test_each_filter_skips_a_real_binpkg_with_its_reason(fresh: Share) -> None:
    eprefix = fresh.builder.eprefix
    emerge = fresh.builder.emerge
    emerge("--oneshot", "--buildpkg", "--quiet-build=y", "dev-libs/libfoo")
    # quickpkg output of the installed package, beside the built one
    fresh.builder.quickpkg("dev-libs/libfoo", fresh.pkgdir / "quick")
    # RESTRICT=bindist
    emerge("--oneshot", "--buildpkg", "--quiet-build=y", "app-misc/hello")
    # eapply_user applies a patch: Portage records USER_PATCHES in the binpkg
    patches = eprefix / "etc/portage/patches/app-misc/stripped"
    patches.mkdir(parents=True)
    (patches / "local.patch").write_text(USER_PATCH)
    emerge("--oneshot", "--buildpkg", "--quiet-build=y", "app-misc/stripped")
    shutil.rmtree(eprefix / "etc/portage/patches")
    # built clean (it has no source phases, so eapply_user never ran), but
    # /etc/portage/patches holds a patch for it now: refused all the same
    emerge("--oneshot", "--buildpkg", "--quiet-build=y", "app-misc/usetest")
    later = eprefix / "etc/portage/patches/app-misc/usetest"
    later.mkdir(parents=True)
    (later / "later.patch").write_text(USER_PATCH)
    try:
        code, out, err = fresh.cli("share", "--json")
        assert code == 0, err
        done = json.loads(out)
        assert [Path(p).name for p in done["published"]] == ["libfoo-1-1.gpkg.tar"]
        skipped = {Path(s["path"]).parts[-2]: (s["filter"], s["reason"]) for s in done["skipped"]}
        assert skipped["libfoo"][0] == "origin" and "quickpkg" in skipped["libfoo"][1]
        assert skipped["hello"] == (
            "restricted",
            "RESTRICT=bindist: its terms do not allow passing the binary on",
        )
        assert skipped["stripped"][0] == "user-patches"
        assert "Portage recorded USER_PATCHES" in skipped["stripped"][1]
        assert skipped["usetest"] == (
            "user-patches",
            f"{later} holds user patches for it (later.patch)",
        )

        status = fresh.status()
        counts = {f["filter"]: (f["on"], f["skipped"]) for f in status["filters"]}
        assert counts == {
            "origin": (True, 1),
            "restricted": (True, 1),
            "user-patches": (True, 2),
            "indexed": (True, 0),
        }
        code, text, _ = fresh.cli("share", "--status")
        assert "restricted    on  skipped    1  (off: allow_restricted)" in text
        assert "skipped app-misc/hello-1 (restricted): RESTRICT=bindist" in text

        # Switching one filter off shares what it skipped, and only that.
        fresh.configure(
            f'share = true\n[sharing]\npkgdir = "{fresh.pkgdir}"\nallow_quickpkg = true\n'
        )
        code, out, err = fresh.cli("share", "--json")
        assert code == 0, err
        again = json.loads(out)["published"]
        assert len(again) == 1 and Path(again[0]).relative_to(fresh.pkgdir).parts[0] == "quick"
        _assert_exactly_once(fresh, 2)
    finally:
        shutil.rmtree(eprefix / "etc/portage/patches", ignore_errors=True)


# -- kill -9 ----------------------------------------------------------------------------------


def _fill_pkgdir(share: Share, count: int) -> None:
    """``count`` distinct real-shaped binpkgs: an emerge-built one with one extra file each."""
    template = share.builder.build_binpkg("dev-libs/libfoo", share.pkgdir.parent / "template")
    for n in range(count):
        dst = share.pkgdir / "dev-libs" / "libfoo" / f"libfoo-1-{n + 1}.gpkg.tar"
        dst.parent.mkdir(parents=True, exist_ok=True)
        rewrite_gpkg(template, dst, extra_image=[(f"image/usr/share/libfoo/{n}", os.urandom(512))])
    shutil.rmtree(template.parent.parent.parent)


def _kill_while_publishing(share: Share, proc: subprocess.Popen[str]) -> bool:
    """SIGKILL ``proc`` as soon as the queue shows a batch being published; was one?"""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            states = [r[1] for r in share.rows()]
        except sqlite3.OperationalError:
            states = []  # the queue file is being created
        if "publishing" in states and states.count("published") >= 20:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return "publishing" in [r[1] for r in share.rows()]
        time.sleep(0.005)
    raise AssertionError(f"share ended before it could be killed:\n{share.log()}")


def _holding(path: Path) -> set[int]:
    """Processes that have ``path`` open (a spawned share writes its output there)."""
    found = set()
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):
            if os.readlink(fd) == str(path):
                found.add(int(fd.parts[2]))
    return found


@pytest.mark.timeout(2400)
def test_kill_9_mid_publish_and_during_catch_up(fresh: Share) -> None:
    fresh.configure(f'share = true\n[sharing]\npkgdir = "{fresh.pkgdir}"\nbatch = 10\n')
    _fill_pkgdir(fresh, 200)
    killed_mid_batch = 0
    for _ in range(2):
        proc = fresh.spawn("share", "--watch")
        killed_mid_batch += _kill_while_publishing(fresh, proc)
        published = [r for r in fresh.rows() if r[1] in ("published", "announced")]
        assert 0 < len(published) < 200
        # whatever the kill interrupted holds no pin the queue does not name
        named = {CID.from_text(r[3]) for r in fresh.rows() if r[3]}
        assert fresh.share_pins() <= named
        # and leaves no process behind: its checking workers and their fork server end too
        _wait(lambda: not _holding(fresh.home / "spawned.log"), "the killed share's workers", 30)
    assert killed_mid_batch >= 1, "no kill landed while a batch was being published"
    proc = fresh.spawn("share", "--watch")
    try:
        _wait(
            lambda: _alive(proc) and [r[1] for r in fresh.rows()].count("announced") == 200,
            "the queue to finish",
            timeout=1500,
        )
    finally:
        _stop(proc)
    _assert_exactly_once(fresh, 200)


# -- the Portage hook --------------------------------------------------------------------------


def test_bashrc_hook_shares_after_each_merge_and_undo_removes_it(fresh: Share) -> None:
    account = pwd.getpwuid(os.getuid())
    eprefix = fresh.builder.eprefix
    bashrc = eprefix / "etc/portage/bashrc"
    bashrc.unlink(missing_ok=True)
    changes = setup_share(
        PortageSetup(
            root=eprefix,
            base_url="",
            subscriptions=(),
            user=account.pw_name,
            group=grp.getgrgid(account.pw_gid).gr_name,
            home=fresh.home,
            ipfsbin=str(Path(sys.executable).with_name("ipfsbin")),
            listen="",
        )
    )
    assert [(c.path, c.action) for c in changes if c.action != "skipped"] == [(bashrc, "created")]
    # no watcher runs: the merge's postinst phase starts `ipfsbin share` by itself
    fresh.builder.emerge(
        "--oneshot", "--buildpkg", "--quiet-build=y", "dev-libs/libfoo", env=fresh.env
    )
    _wait(lambda: fresh.status()["states"]["announced"] == 1, "the hook's share to publish")
    _assert_exactly_once(fresh, 1)

    code, out, err = fresh.cli("setup-portage", "--undo", "--root", str(eprefix), "--json")
    assert code == 0, err
    assert {"path": str(bashrc), "action": "removed", "note": "sharing trigger"} in json.loads(out)[
        "changes"
    ]
    assert not bashrc.exists()
