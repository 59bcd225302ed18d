"""``ipfsbin weather``, ``ipfsbin doctor`` and the page of ``ipfsbin serve``, on three real nodes.

alpha publishes and indexes builds from the builder playground (two
builders agree on libfoo; usetest only as a USE=qux build, which the host
does not use); gamma pins libfoo's binpkg and provides it; beta follows
the index. beta's host is the builder playground's Portage (read only: its
installed set is the known set: hello, legacy, stripped, usesfoo, usetest,
libfoo), and doctor's Portage checks run on a fresh client playground.
The tests run in file order and share one story.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from ipfsbin.kubo.daemon import USER_NODE_CONFIG
from ipfsbin.kubo.node import ManagedNode
from tests.integration.serve_helpers import free_port, wait_serving
from tests.playground.builder import BuilderPlayground

# the first test carries the story's set-up (builds, three nodes, an index), which takes
# minutes on a loaded two-core machine
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

IPFSBIN = str(Path(sys.executable).with_name("ipfsbin"))
PROFILE = "default/linux/amd64/23.0"
CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
PORTAGE_KEYS = ("PORTAGE_OVERRIDE_EPREFIX", "PORTAGE_REPOSITORIES", "PYTHONPATH")


@dataclass
class Host:
    home: Path
    node: ManagedNode | None
    portage: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "IPFSBIN_HOME": str(self.home),
            "IPFSBIN_SYSTEM_CONFIG": str(self.home / "no-system-config.toml"),
            **self.portage,
        }
        env.pop("IPFSBIN_API", None)
        if self.node is not None:
            env["IPFSBIN_API"] = self.node.api_multiaddr
        return env

    def run(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [IPFSBIN, *args], env=self.env(), capture_output=True, text=True, timeout=300
        )
        if code is not None and done.returncode != code:
            raise AssertionError(
                f"ipfsbin {' '.join(args)} exited {done.returncode}, expected {code}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done

    def json(self, *args: str, code: int | None = 0) -> Any:
        return json.loads(self.run(*args, "--json", code=code).stdout)

    def shell(self, command: str) -> None:
        """Run a fix command as a user would, with ``ipfsbin`` on PATH."""
        env = self.env()
        env["PATH"] = f"{Path(IPFSBIN).parent}:{env['PATH']}"
        done = subprocess.run(
            ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{command}:\n{done.stdout}{done.stderr}"


def _portage_env(playground: BuilderPlayground) -> dict[str, str]:
    env = playground.env()
    return {key: env[key] for key in PORTAGE_KEYS}


@dataclass
class Story:
    alpha: Host
    beta: Host
    gamma: ManagedNode
    builder: BuilderPlayground
    client: BuilderPlayground
    name: str
    port: int
    workdir: Path
    binpkgs: dict[str, str]
    serve: subprocess.Popen[str] | None = None
    log: Any = None

    def start_serve(self) -> None:
        self.log = log = (self.workdir / "serve.log").open("w")
        self.serve = subprocess.Popen(
            [IPFSBIN, "serve", "--interval", "0.5"],
            env=self.beta.env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
        wait_serving(self.serve, self.port, self.workdir / "serve.log")

    def stop_serve(self) -> None:
        if self.serve is not None:
            self.serve.send_signal(signal.SIGINT)
            try:
                self.serve.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.serve.kill()
                self.serve.wait()
            self.serve = None
            self.log.close()

    def doctor(self, host: Host | None = None) -> tuple[int, dict[str, dict[str, Any]]]:
        done = (host or self.beta).run("doctor", "--json", code=None)
        report = json.loads(done.stdout)
        assert (done.returncode == 0) == report["ok"], done.stderr
        return done.returncode, {f["check"]: f for f in report["findings"]}


@pytest.fixture(scope="module")
def story(kubo_nodes: Any, builder_playground: BuilderPlayground) -> Iterator[Story]:
    alpha_node, gamma, beta_node = kubo_nodes(3)
    workdir = Path(tempfile.mkdtemp(prefix="ipfsbin-health-"))
    client = BuilderPlayground.create()
    port = free_port()
    alpha = Host(workdir / "alpha", alpha_node)
    beta = Host(workdir / "beta", beta_node, _portage_env(builder_playground))
    builds = builder_playground.binpkgs
    # a build of usetest with USE=qux, which this host does not have; not installed anywhere
    qux_dir = workdir / "pkg-qux"
    builder_playground.emerge("--buildpkgonly", "--quiet-build=y", "app-misc/usetest",
                              env={"PKGDIR": str(qux_dir), "USE": "bar qux"})  # fmt: skip
    (qux,) = qux_dir.rglob("*.gpkg.tar")
    story: Story | None = None
    try:
        for key in ("builder", "builder2", "maintainer"):
            alpha.json("key", "gen", key)
        ids = [alpha.json("key", "show", k)["key_id"] for k in ("builder", "builder2")]
        root = alpha.json("index", "init", "--key", "maintainer",
                          "--builder", ids[0], "--builder", ids[1])  # fmt: skip
        published = alpha.json("publish", "--key", "builder", "--profile", PROFILE,
                               *(str(builds[c]) for c in ("dev-libs/libfoo-1",
                                                          "app-misc/usesfoo-1",
                                                          "app-misc/stripped-1")),
                               str(qux))  # fmt: skip
        published += alpha.json("publish", "--key", "builder2", "--profile", PROFILE,
                                str(builds["dev-libs/libfoo-1"]))  # fmt: skip
        alpha.run("index", "add", *(p["attestation"] for p in published))
        alpha.run("index", "commit", "-m", "first builds", "--key", "maintainer")
        name = alpha.json("index", "publish", "--key", "maintainer", "--allow-offline")["name"]
        binpkgs = {p["cpv"]: p["binpkg"] for p in published}
        for cid in {binpkgs[c] for c in ("dev-libs/libfoo-1", "app-misc/usesfoo-1",
                                         "app-misc/stripped-1")}:  # fmt: skip
            alpha_node.run("routing", "provide", cid)
        # gamma installed libfoo through ipfsbin and keeps seeding it
        gamma.run("pin", "add", binpkgs["dev-libs/libfoo-1"], timeout=120)
        gamma.run("routing", "provide", binpkgs["dev-libs/libfoo-1"])
        (beta.home / "config").mkdir(parents=True, exist_ok=True)
        (beta.home / "config/ipfsbin.toml").write_text(f'[serve]\nlisten = "127.0.0.1:{port}"\n')
        beta.run("subscribe", name, "--root", root["root"])
        assert beta.json("sync")[0]["outcome"] == "accepted"
        story = Story(alpha=alpha, beta=beta, gamma=gamma, builder=builder_playground,
                      client=client, name=name, port=port, workdir=workdir,
                      binpkgs=binpkgs)  # fmt: skip
        yield story
    finally:
        if story is not None:
            story.stop_serve()
        client.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def test_weather_of_the_installed_set_is_exact(story: Story) -> None:
    result = story.beta.json("weather", "--provider-timeout", "5", code=1)
    assert (result["available"], result["total"], result["percent"]) == (3, 6, 50.0)
    rows = {p["package"]: p for p in result["packages"]}
    assert set(rows) == {
        "app-misc/hello-1",
        "app-misc/legacy-1",
        "app-misc/stripped-1",
        "app-misc/usesfoo-1",
        "app-misc/usetest-1",
        "dev-libs/libfoo-1",
    }
    figures = {p: (r["available"], r["builders"], r["providers"]) for p, r in rows.items()}
    assert figures == {
        "dev-libs/libfoo-1": (True, 2, 2),
        "app-misc/usesfoo-1": (True, 1, 1),
        "app-misc/stripped-1": (True, 1, 1),
        "app-misc/hello-1": (False, 0, None),
        "app-misc/legacy-1": (False, 0, None),
        "app-misc/usetest-1": (False, 0, None),
    }
    # hello is what installed usetest depends on; the others nothing installed needs
    assert result["missing"] == ["app-misc/hello-1", "app-misc/legacy-1", "app-misc/usetest-1"]
    assert rows["app-misc/hello-1"]["dependents"] == 1
    assert any(r.startswith("use: ") for r in rows["app-misc/usetest-1"]["refusals"])
    assert result["by_category"] == [
        {"category": "app-misc", "available": 2, "total": 5},
        {"category": "dev-libs", "available": 1, "total": 1},
    ]
    assert result["agreement"] == [{"builders": 1, "packages": 2}, {"builders": 2, "packages": 1}]
    # whether a package is available does not depend on its providers: no need to wait for them
    text = story.beta.run("weather", "--display-missing", "--provider-timeout", "1", code=1).stdout
    assert "50.0% binaries available (3 out of 6)" in text
    assert "coverage by category" in text and "3 missing, most depended-on first" in text


def test_weather_of_given_atoms_exits_0_at_full_coverage(story: Story) -> None:
    result = story.beta.json("weather", "dev-libs/libfoo", "=app-misc/usesfoo-1",
                             "--provider-timeout", "1", code=0)  # fmt: skip
    assert (result["available"], result["total"], result["percent"]) == (2, 2, 100.0)
    bad = story.beta.run("weather", "not an atom", code=2)
    assert "ipfsbin: error:" in bad.stderr and "not an atom" in bad.stderr


class _Texts(HTMLParser):
    """The text of elements with an id, as the browser's DOM holds it."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "meta", "rect"):
            return
        ident = dict(attrs).get("id")
        self._open.append(ident)
        if ident:
            self.by_id[ident] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("br", "meta", "rect") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for ident in self._open:
            if ident:
                self.by_id[ident] += data


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
def test_page_renders_in_headless_chromium(story: Story) -> None:
    story.start_serve()
    url = f"http://127.0.0.1:{story.port}/"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "serve-page.png"
    shot.unlink(missing_ok=True)
    browser = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
               f"--user-data-dir={story.workdir / 'chromium'}"]  # fmt: skip
    done = subprocess.run([*browser, "--window-size=1200,2400", f"--screenshot={shot}", url],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr
    dom = subprocess.run([*browser, "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert dom.returncode == 0, dom.stderr
    texts = _Texts()
    texts.feed(dom.stdout)
    assert texts.by_id["coverage"] == "50.0% binaries available (3 out of 6)"
    refusals = texts.by_id["refusals"]
    assert re.search(r"app-misc/usetest-1 \(0 dependents\): use: ", refusals), refusals
    assert "app-misc/hello-1 (1 dependents): no build in any followed index" in refusals
    assert story.name in dom.stdout and "<svg" in dom.stdout
    assert "shim: the binhost answers" in texts.by_id["doctor"]


def test_doctor_shim_and_portage_findings_cleared_by_their_fixes(story: Story) -> None:
    story.stop_serve()
    host = Host(story.beta.home, story.beta.node, _portage_env(story.client))
    make_conf = story.client.eprefix / "etc/portage/make.conf"
    with make_conf.open("a") as conf:
        conf.write('FEATURES="${FEATURES} binpkg-request-signature"\n')
    code, found = story.doctor(host)
    assert code == 1
    assert found["binrepos"]["status"] == "fail"
    assert found["portage:getbinpkg"]["status"] == "warn"
    assert found["portage:signature"]["status"] == "fail"
    assert found["shim"]["status"] == "fail"
    assert found["shim"]["fix"].startswith("ipfsbin serve ")
    story.start_serve()  # the fix, run in the background as a service would
    for check in ("binrepos", "portage:getbinpkg", "portage:signature"):
        host.shell(found[check]["fix"].replace("<unprivileged user>", "nobody"))
    code, found = story.doctor(host)
    assert {c: f["status"] for c, f in found.items() if f["status"] in ("warn", "fail")} == {}
    assert code == 0
    assert found["head:" + story.name]["status"] == "ok"
    assert found["shim"]["status"] == "ok" and found["swarm"]["status"] == "ok"
    assert found["hole-punching"]["status"] == "ok"


def test_doctor_expired_head_cleared_by_sync(story: Story) -> None:
    alpha = story.alpha
    hello = alpha.json("publish", "--key", "builder", "--profile", PROFILE, "--allow-restricted",
                       str(story.builder.binpkgs["app-misc/hello-1"]))  # fmt: skip
    alpha.run("index", "add", *(p["attestation"] for p in hello))
    # a head that expires a second after it is signed; beta takes it with --allow-stale, as a
    # host working offline on purpose does (a lifetime that outlasts the sync on a loaded
    # machine would take minutes to wait out)
    alpha.run("index", "commit", "-m", "short-lived", "--key", "maintainer", "--lifetime", "1s")
    alpha.run("index", "publish", "--key", "maintainer", "--allow-offline")
    assert story.beta.json("sync", "--allow-stale")[0]["outcome"] == "accepted"
    (status,) = story.beta.json("status")
    time.sleep(max(0.0, status["head_expires"] - time.time()) + 1)
    code, found = story.doctor()
    head = found["head:" + story.name]
    assert code == 1 and head["status"] == "fail", head
    assert "expired" in head["message"] and head["fix"] == "ipfsbin sync"
    # the maintainers publish a new head; the fix picks it up
    published = alpha.json("publish", "--key", "builder", "--profile", PROFILE,
                           str(story.builder.binpkgs["app-misc/legacy-1"]))  # fmt: skip
    alpha.run("index", "add", *(p["attestation"] for p in published))
    alpha.run("index", "commit", "-m", "fresh again", "--key", "maintainer")
    alpha.run("index", "publish", "--key", "maintainer", "--allow-offline")
    story.beta.shell(head["fix"])
    code, found = story.doctor()
    assert found["head:" + story.name]["status"] == "ok", found["head:" + story.name]


def test_doctor_small_budget_cleared_by_repo_gc(story: Story) -> None:
    assert story.beta.node is not None
    with story.beta.node.client() as client:
        size = client.repo_stat().repo_size
        config = story.beta.home / "config/ipfsbin.toml"
        config.write_text(config.read_text() + f'[gc]\nkeep_size = "{size + (2 << 20)}"\n')
        code, found = story.doctor()
        assert found["disk"]["status"] == "ok", found["disk"]
        client.block_put(secrets.token_bytes(1 << 20))
        for _ in range(3):
            client.block_put(secrets.token_bytes(1 << 20))
    code, found = story.doctor()
    disk = found["disk"]
    assert code == 1 and disk["status"] == "fail" and "over gc.keep_size" in disk["message"]
    story.beta.shell(disk["fix"])
    code, found = story.doctor()
    assert found["disk"]["status"] == "ok", found["disk"]


def test_doctor_kubo_stopped_cleared_by_node_start(story: Story, kubo_binary: Path) -> None:
    home = story.workdir / "managed"
    host = Host(home, None, _portage_env(story.builder))
    # the managed node's repo, made with the test profile (loopback only) before first use
    ManagedNode(home / "kubo", binary=kubo_binary, extra_config=dict(USER_NODE_CONFIG)).init()
    host.run("node", "start")
    try:
        _, found = story.doctor(host)
        assert found["kubo"]["status"] == "ok" and "0.39.0" in found["kubo"]["message"]
        host.run("node", "stop")
        code, found = story.doctor(host)
        assert code == 1 and found["kubo"]["status"] == "fail", found["kubo"]
        assert found["kubo"]["fix"] == "ipfsbin node start"
        assert "swarm" not in found and "disk" not in found
        host.shell(found["kubo"]["fix"])
        _, found = story.doctor(host)
        assert found["kubo"]["status"] == "ok", found["kubo"]
    finally:
        host.run("node", "stop", code=None)
