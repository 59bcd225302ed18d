"""``ipfsbin share``: real emerge builds shared into real Kubo, through the persistent queue.

Sharing is turned on in the config file; from then on ``share --watch``
publishes what emerge writes into PKGDIR with no other command. Killed with
SIGKILL while it publishes, the next run finishes the queue: every build
published exactly once and no pin left that the queue does not account for.
Each default filter is shown skipping a real binpkg with its reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
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

from ipfsbin.builder.share import SHARE_HOLDER
from ipfsbin.cli.main import main
from ipfsbin.codec.cid import CID
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.manifest import Manifest
from ipfsbin.trust.keys import KeyStore
from tests.playground.builder import BuilderPlayground
from tests.playground.portage_env import missing_host_tools

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
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

    def cli(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            for name, value in self.env.items():
                mp.setenv(name, value)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(  # noqa: S603 - this interpreter, our own CLI
            [sys.executable, "-m", "ipfsbin.cli.main", *args],
            env={**os.environ, **self.env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def status(self) -> dict[str, Any]:
        code, out, err = self.cli("share", "--status", "--json")
        assert code == 0, err
        result: dict[str, Any] = json.loads(out)
        return result

    def status_rows(self, state: str) -> list[dict[str, Any]]:
        code, out, err = self.cli("share", "--status", "--json")
        assert code == 0, err
        return [r for r in json.loads(out)["builds"] if r["state"] == state]

    def rows(self) -> list[tuple[str, str, str | None]]:
        """(path, state, attestation) of every queue row, read as a separate reader would."""
        db = sqlite3.connect(self.home / "share.sqlite")
        try:
            return db.execute("SELECT path, state, attestation FROM builds ORDER BY id").fetchall()
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

    def reset(self) -> None:
        """Empty PKGDIR, the queue and the share pins, for the next test."""
        shutil.rmtree(self.pkgdir)
        self.pkgdir.mkdir()
        for cid in self.share_pins():
            self.client.pin_rm([cid])
        for name in ("share.sqlite", "share.sqlite-wal", "share.sqlite-shm", "pins.sqlite"):
            (self.home / name).unlink(missing_ok=True)


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
        out, _ = proc.communicate()
        raise AssertionError(f"share --watch exited {proc.returncode}:\n{out}")
    return True


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def _assert_exactly_once(share: Share, expected: int) -> None:
    """Every build published once; Kubo's share pins, the ledger and the queue agree."""
    rows = share.rows()
    published = [r for r in rows if r[1] == "published"]
    assert len(published) == expected, rows
    assert len({r[0] for r in published}) == expected
    attestations = {CID.from_text(r[2]) for r in published if r[2]}
    assert len(attestations) == expected
    assert share.share_pins() == attestations
    assert share.ledger_needs() == attestations
    assert not [r for r in rows if r[1] in ("queued", "publishing")]


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


def test_watch_publishes_what_emerge_builds(fresh: Share) -> None:
    proc = fresh.spawn("share", "--watch")
    try:
        _wait(lambda: _alive(proc) and (fresh.home / "share.sqlite").exists(), "the watcher")
        fresh.builder.emerge("--oneshot", "--buildpkg", "--quiet-build=y", "dev-libs/libfoo")
        fresh.builder.emerge("--oneshot", "--buildpkg", "--quiet-build=y", "app-misc/usetest")
        _wait(
            lambda: _alive(proc) and fresh.status()["states"]["published"] == 2,
            "both builds to be published",
        )
    finally:
        log = _stop(proc)
    assert proc.returncode == 0, log
    assert "published dev-libs/libfoo-1" in log and "published app-misc/usetest-1" in log
    _assert_exactly_once(fresh, 2)
    for row in fresh.status_rows("published"):
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
