"""emerge --getbinpkg[only] through ``ipfsbin serve``, on two real Kubo nodes and real Portage.

alpha builds (the builder playground), publishes, indexes, commits and
publishes the head over IPNS; beta subscribes, syncs, runs ``ipfsbin
serve`` in a client playground (its own EPREFIX and installed-package
database) and installs with the real ``emerge``. The tests run in file
order and share one story.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ipfsbin.codec.cid import CID
from ipfsbin.kubo.flatfs import FlatfsBlocks
from ipfsbin.kubo.node import ManagedNode
from ipfsbin.serve.sources import REPO_ENV
from ipfsbin.store.gateway_file import file_parts
from tests.integration.serve_helpers import free_port, wait_serving
from tests.playground import ebuilds as repo
from tests.playground.builder import BuilderPlayground, parse_packages_index
from tests.playground.portage_env import EmergeError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IPFSBIN = str(Path(sys.executable).with_name("ipfsbin"))
PROFILE = "default/linux/amd64/23.0"


BIG_BYTES = 40_000_000
BIG = repo.big_package(BIG_BYTES)


@dataclass
class Host:
    home: Path
    node: ManagedNode
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.extra,
            "IPFSBIN_HOME": str(self.home),
            "IPFSBIN_API": self.node.api_multiaddr,
            "IPFSBIN_SYSTEM_CONFIG": str(self.home / "no-system-config.toml"),
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [IPFSBIN, *args], env=self.env(), capture_output=True, text=True, timeout=300
        )
        if check and done.returncode != 0:
            raise AssertionError(f"ipfsbin {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)


@dataclass
class Story:
    alpha: Host
    beta: Host
    client: BuilderPlayground
    name: str
    port: int
    workdir: Path
    builds: dict[str, Path]
    serve: subprocess.Popen[str] | None = None
    log: Path | None = None
    log_file: Any = None
    pins: dict[str, str] = field(default_factory=dict)
    burst_from: int = 0
    """Where the serve log stood when the three-package emerge began."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.name}"

    def publish_and_index(self, *paths: Path, message: str) -> None:
        published = self.alpha.json("publish", "--key", "builder", "--profile", PROFILE,
                                    *map(str, paths))  # fmt: skip
        self.alpha.run("index", "add", *(p["attestation"] for p in published))
        self.commit(message)

    def commit(self, message: str) -> None:
        self.alpha.run("index", "commit", "-m", message, "--key", "maintainer")
        self.alpha.run("index", "publish", "--key", "maintainer", "--allow-offline")
        result = self.beta.json("sync")
        assert all(r["outcome"] in ("accepted", "current") for r in result), result

    def start_serve(self, interval: float = 0.5) -> None:
        """Start the shim; it looks for a moved head or a changed host every ``interval`` s
        (after a start from its kept listing, the catalog is rebuilt after the first)."""
        assert self.serve is None
        self.log = self.workdir / f"serve-{time.monotonic_ns()}.log"
        self.log_file = self.log.open("w")
        env = {**self.client.env(), **self.beta.env(), "PATH": os.environ["PATH"]}
        for key in ("PORTAGE_OVERRIDE_EPREFIX", "PORTAGE_REPOSITORIES", "PYTHONPATH"):
            env[key] = self.client.env()[key]
        self.serve = subprocess.Popen(
            [IPFSBIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--interval", str(interval)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log_file,
            text=True,
        )
        wait_serving(self.serve, self.port, self.log)

    def stop_serve(self) -> None:
        if self.serve is not None:
            self.serve.send_signal(signal.SIGINT)
            try:
                self.serve.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.serve.kill()
                self.serve.wait()
            self.serve = None
            self.log_file.close()

    def client_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``ipfsbin`` on beta, in the client playground's Portage environment."""
        env = {**self.client.env(), **self.beta.env(), "PATH": os.environ["PATH"]}
        for key in ("PORTAGE_OVERRIDE_EPREFIX", "PORTAGE_REPOSITORIES", "PYTHONPATH"):
            env[key] = self.client.env()[key]
        done = subprocess.run([IPFSBIN, *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"ipfsbin {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done

    def packages(self) -> list[dict[str, str]]:
        text = gzip.decompress(httpx.get(f"{self.base}/Packages.gz", timeout=10).content)
        return parse_packages_index(text.decode())

    def wait_for(self, predicate: Any, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")

    def emerge(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.client.emerge(*args, env={"FEATURES": "-binpkg-request-signature"})

    def installed(self) -> set[str]:
        vdb = self.client.eprefix / "var/db/pkg"
        return {f"{c.name}/{p.name}" for c in vdb.iterdir() if c.is_dir() for p in c.iterdir()}

    def events(self, name: str, since: int = 0) -> int:
        """How many ``name`` events the running shim logged after byte ``since`` of its log."""
        assert self.log is not None
        with self.log.open("rb") as f:
            f.seek(since)
            return sum(1 for line in f if line.startswith(b"{") and
                       json.loads(line).get("event") == name)  # fmt: skip

    def pkgdir_files(self) -> list[Path]:
        """Binpkg files in PKGDIR and in the binrepos.conf entries' download cache."""
        places = (self.client.pkgdir, self.client.eprefix / "var/cache/binhost")
        return [p for d in places for p in d.rglob("*") if p.is_file() and p.name != "Packages"]


def _variant(builder: BuilderPlayground, atom: str, out: Path, env: dict[str, str]) -> Path:
    """Build ``atom`` again into its own PKGDIR with other settings; the one binpkg it wrote."""
    builder.emerge("--oneshot", "--buildpkg", "--quiet-build=y", atom,
                   env={"PKGDIR": str(out), **env})  # fmt: skip
    (found,) = [p for p in out.rglob("*.gpkg.tar")]
    return found


@pytest.fixture(scope="module")
def story(kubo_nodes: Any, builder_playground: BuilderPlayground) -> Iterator[Story]:
    alpha_node, beta_node = kubo_nodes(2)
    workdir = Path(tempfile.mkdtemp(prefix="ipfsbin-shim-"))
    alpha = Host(workdir / "alpha", alpha_node)
    # the shim reads binpkgs through beta's own gateway (its port is chosen by the OS)
    beta = Host(workdir / "beta", beta_node, {"IPFSBIN_GATEWAY": beta_node.gateway_url})
    builds = builder_playground.binpkgs
    # other-USE and newer-microarchitecture variants of usetest (text only: any -march builds)
    other_use = _variant(builder_playground, "app-misc/usetest", workdir / "pkg-use",
                         {"USE": "-bar"})  # fmt: skip
    newer = _variant(builder_playground, "app-misc/usetest", workdir / "pkg-v3",
                     {"CFLAGS": "-O2 -pipe -march=x86-64-v3",
                      "CXXFLAGS": "-O2 -pipe -march=x86-64-v3"})  # fmt: skip
    # usesfoo built against a libfoo sub-slot the client will not have
    libfoo_2 = {**repo.EBUILDS["dev-libs/libfoo-1"], "SLOT": "0/2"}
    subslot_builder = BuilderPlayground.create(
        ebuilds={**repo.EBUILDS, "dev-libs/libfoo-1": libfoo_2}
    )
    client: BuilderPlayground | None = None
    try:
        subslot_builder.emerge("--oneshot", "--buildpkg", "--quiet-build=y",
                               "dev-libs/libfoo", "app-misc/usesfoo")  # fmt: skip
        other_subslot = subslot_builder.refresh()["app-misc/usesfoo-1"]
        client = BuilderPlayground.create(ebuilds={**repo.EBUILDS, **BIG})
        # under the client's own EPREFIX: from another, each install would take ~40 s more
        big = client.build_only("app-misc/big", pkgdir=workdir / "pkg-big")["app-misc/big-1"]
        alpha.json("key", "gen", "builder")
        alpha.json("key", "gen", "maintainer")
        builder_id = alpha.json("key", "show", "builder")["key_id"]
        root = alpha.json("index", "init", "--key", "maintainer", "--builder", builder_id)
        published = alpha.json("publish", "--key", "builder", "--profile", PROFILE,
                               *(str(builds[c]) for c in ("app-misc/usetest-1",
                                                          "dev-libs/libfoo-1",
                                                          "app-misc/usesfoo-1")),
                               str(other_use), str(newer), str(other_subslot),
                               str(big))  # fmt: skip
        # hello (RESTRICT=bindist, a gcc-built ELF) is what usetest's USE=foo pulls in
        published += alpha.json("publish", "--key", "builder", "--profile", PROFILE,
                                "--allow-restricted", str(builds["app-misc/hello-1"]))  # fmt: skip
        alpha.run("index", "add", *(p["attestation"] for p in published))
        alpha.run("index", "commit", "-m", "first builds", "--key", "maintainer")
        name = alpha.json("index", "publish", "--key", "maintainer", "--allow-offline")["name"]
        beta.run("subscribe", name, "--root", root["root"])
        (beta.home / "config").mkdir(parents=True, exist_ok=True)
        (beta.home / "config/ipfsbin.toml").write_text('[host]\ntarget = "x86_64_v2"\n')
        assert beta.json("sync")[0]["outcome"] == "accepted"
        story = Story(alpha=alpha, beta=beta, client=client, name=name, port=free_port(),
                      workdir=workdir, builds=builds)  # fmt: skip
        story.start_serve()
        yield story
        story.stop_serve()
    finally:
        subslot_builder.cleanup()
        if client is not None:
            client.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def test_serve_says_it_reads_binpkgs_from_the_nodes_gateway(story: Story) -> None:
    assert story.log is not None
    gateway = story.beta.node.gateway_url.rstrip("/")
    assert f"ipfsbin:   binpkg bytes from {gateway}" in story.log.read_text()


def test_a_restarted_shim_serves_its_kept_listing_before_its_catalog_is_rebuilt(
    story: Story,
) -> None:
    story.wait_for(lambda: story.events("kept listing written") >= 1, "the kept listing")
    before = httpx.get(f"{story.base}/Packages", timeout=10)
    before_gz = httpx.get(f"{story.base}/Packages.gz", timeout=10).content
    story.stop_serve()
    # the rebuild waits one interval: a long one holds it back while the listing is checked
    story.start_serve(interval=600)
    status = httpx.get(f"http://127.0.0.1:{story.port}/status", timeout=10).json()
    assert status["catalog"]["listing"] == "kept"
    assert story.events("kept listing served") == 1
    assert story.events("catalog built") == 0
    after = httpx.get(f"{story.base}/Packages", timeout=10)
    assert after.content == before.content  # TIMESTAMP included
    assert after.headers["last-modified"] == before.headers["last-modified"]
    assert httpx.get(f"{story.base}/Packages.gz", timeout=10).content == before_gz
    # a download from the kept listing is checked against its signed manifest
    listed = [p for p in parse_packages_index(after.text) if p["CPV"] != "app-misc/big-1"]
    assert listed and status["heads"][0]["offered"] == len(parse_packages_index(after.text))
    for p in listed:
        data = httpx.get(f"{story.base}/{p['PATH']}", timeout=60).content
        assert len(data) == int(p["SIZE"])
        assert hashlib.sha1(data).hexdigest() == p["SHA1"]  # noqa: S324 - Portage's check
    head = httpx.head(f"{story.base}/{listed[0]['PATH']}", timeout=10)
    assert head.status_code == 200 and head.headers["content-length"] == listed[0]["SIZE"]
    missing = httpx.get(f"{story.base}/{listed[0]['PATH']}.not-listed", timeout=10)
    assert missing.status_code == 404
    downloads = httpx.get(f"http://127.0.0.1:{story.port}/status", timeout=10).json()
    assert downloads["downloads"]["served"] == len(listed)
    assert downloads["downloads"]["failed"] == 0
    assert story.events("catalog built") == 0
    story.stop_serve()
    story.start_serve()
    story.wait_for(lambda: story.events("catalog built") >= 1, "the rebuild")
    status = httpx.get(f"http://127.0.0.1:{story.port}/status", timeout=10).json()
    assert status["catalog"]["listing"] == "built"
    assert httpx.get(f"{story.base}/Packages", timeout=10).content == before.content
    assert _first_build(story)["from_kept"] > 0  # the rebuild read the kept builds


def _make_conf(story: Story) -> Path:
    return story.client.eprefix / "etc/portage/make.conf"


def _policy(story: Story, text: str) -> None:
    (story.beta.home / "config/ipfsbin.toml").write_text(f'[host]\ntarget = "x86_64_v2"\n{text}')


@pytest.mark.parametrize("change", ["host", "policy", "cut short", "other version"])
def test_a_kept_listing_for_other_inputs_or_damaged_is_not_used(story: Story, change: str) -> None:
    story.wait_for(lambda: story.events("catalog built") >= 1, "a built catalog")
    listing = story.beta.home / "serve-listing"
    before = httpx.get(f"{story.base}/Packages", timeout=10).content
    story.stop_serve()
    if change == "host":
        os.utime(_make_conf(story))  # Portage's configuration touched: read again
    elif change == "policy":
        _policy(story, '[policy]\nmax_head_age = "3650d"\n')
    elif change == "cut short":
        listing.write_bytes(listing.read_bytes()[:-10])
    else:
        data = listing.read_bytes()
        at = len(b"ipfsbin-served-listing\n")
        listing.write_bytes(data[:at] + (99).to_bytes(4, "big") + data[at + 4 :])
    story.start_serve()
    assert story.events("kept listing served") == 0
    assert story.events("kept listing not used") == 1
    assert _first_build(story)["offers"] > 0  # built before the first request was answered
    assert httpx.get(f"{story.base}/Packages", timeout=10).content == before
    story.wait_for(lambda: story.events("kept listing written") >= 1, "the listing kept again")
    if change == "policy":
        story.stop_serve()
        _policy(story, "")
        story.start_serve()


def test_a_restarted_shim_lists_the_same_bytes_from_its_kept_builds(story: Story) -> None:
    story.wait_for(lambda: story.events("kept builds written") >= 1, "the kept builds")
    kept = story.beta.home / "catalog-builds"
    assert kept.stat().st_size > 0
    before = httpx.get(f"{story.base}/Packages", timeout=10).content
    story.stop_serve()
    (story.beta.home / "serve-listing").unlink(
        missing_ok=True
    )  # so that the first build reads kept builds
    story.start_serve()
    assert httpx.get(f"{story.base}/Packages", timeout=10).content == before
    assert story.events("kept builds refused") == 0
    assert _first_build(story)["from_kept"] > 0
    # a file cut short is refused whole: the next start reads the blocks and lists the same
    story.stop_serve()
    kept.write_bytes(kept.read_bytes()[:-10])
    (story.beta.home / "serve-listing").unlink(missing_ok=True)
    story.start_serve()
    assert story.events("kept builds refused") == 1
    assert _first_build(story)["from_kept"] == 0
    assert httpx.get(f"{story.base}/Packages", timeout=10).content == before
    story.wait_for(lambda: story.events("kept builds written") >= 1, "the kept builds again")


def _first_build(story: Story) -> dict[str, Any]:
    """The running shim's first "catalog built" event."""
    assert story.log is not None
    for line in story.log.read_text().splitlines():
        if line.startswith("{") and json.loads(line).get("event") == "catalog built":
            event: dict[str, Any] = json.loads(line)
            return event
    raise AssertionError("no catalog built yet")


def test_host_profile_read_through_portage(story: Story) -> None:
    info = json.loads(story.client_run("host", "--json").stdout)
    assert info["chost"] == repo.host_chost()
    assert info["target"] == "x86_64_v2"  # from the per-user config
    assert info["cflags"]["normalized"]["opt"] == "2"
    assert "sse4_2" in info["cpu_features"] and "avx2" not in info["cpu_features"]
    assert "ISA features" in story.client_run("host").stdout


def test_only_fitting_builds_are_listed(story: Story) -> None:
    listed = story.packages()
    cpvs = sorted(p["CPV"] for p in listed)
    # usetest: only the host-USE, baseline build; usesfoo: libfoo is not installed yet
    assert cpvs == [
        "app-misc/big-1",
        "app-misc/hello-1",
        "app-misc/usetest-1",
        "dev-libs/libfoo-1",
    ], listed
    (usetest,) = [p for p in listed if p["CPV"] == "app-misc/usetest-1"]
    assert set(usetest["USE"].split()) >= {"bar", "baz", "foo"}
    for p in listed:
        assert p["PATH"].endswith(".gpkg.tar") and ".." not in p["PATH"]
        assert {"SIZE", "MD5", "SHA1", "BUILD_ID", "BUILD_TIME", "MTIME"} <= set(p)


def test_explain_gives_a_reason_per_axis(story: Story) -> None:
    found = json.loads(story.client_run("explain", "app-misc/usetest", "--json").stdout)[
        "candidates"
    ]
    verdicts = sorted((c["verdict"], tuple(sorted({r["axis"] for r in c["refusals"]})))
                      for c in found)  # fmt: skip
    assert verdicts == [("offered", ()), ("refused", ("microarchitecture",)),
                        ("refused", ("use",))], found  # fmt: skip
    out = story.client_run("explain", "app-misc/usesfoo")
    assert out.stdout.count("sub-slot:") == 2 and "dev-libs/libfoo:0/2" in out.stdout


def test_served_packages_read_by_portage(story: Story) -> None:
    from portage.getbinpkg import PackageIndex

    response = httpx.get(f"{story.base}/Packages", timeout=10)
    index = PackageIndex()
    index.read(iter(response.text.splitlines(keepends=True)))
    assert index.header["VERSION"] == "0" and "TTL" not in index.header
    stamp = int(index.header["TIMESTAMP"])
    assert response.headers["last-modified"] == time.strftime(
        "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(stamp)
    )
    assert {d["CPV"] for d in index.packages} == {
        "app-misc/big-1",
        "app-misc/hello-1",
        "app-misc/usetest-1",
        "dev-libs/libfoo-1",
    }
    later = response.headers["last-modified"]
    again = httpx.get(f"{story.base}/Packages", headers={"If-Modified-Since": later})
    assert again.status_code == 304


def test_getbinpkgonly_installs_through_the_shim(story: Story) -> None:
    done = story.client.env()
    changes = subprocess.run(
        [IPFSBIN, "setup-portage", "--root", str(story.client.eprefix),
         "--user", "nobody", "--json"],
        env={**story.beta.env(), "PORTAGE_OVERRIDE_EPREFIX": done["PORTAGE_OVERRIDE_EPREFIX"]},
        capture_output=True, text=True,
    )  # fmt: skip
    assert changes.returncode == 0, changes.stderr
    conf = story.client.eprefix / "etc/portage/binrepos.conf/ipfsbin.conf"
    text = conf.read_text()
    assert f"sync-uri = http://127.0.0.1:7711/{story.name}" in text
    # the test server listens elsewhere: point the entry at it
    conf.write_text(text.replace("127.0.0.1:7711", f"127.0.0.1:{story.port}"))
    assert story.log is not None
    story.burst_from = story.log.stat().st_size
    out = story.emerge("--getbinpkgonly", "--oneshot", "app-misc/usetest", "dev-libs/libfoo")
    assert "app-misc/usetest-1" in out.stdout
    assert {"app-misc/usetest-1", "app-misc/hello-1", "dev-libs/libfoo-1"} <= story.installed()
    assert story.client.eprefix.joinpath("usr/bin/hello").is_file()


def test_installed_subslot_unlocks_dependent_build(story: Story) -> None:
    # libfoo:0/1 is now installed: the usesfoo built against it is listed, the 0/2 one never
    story.wait_for(lambda: "app-misc/usesfoo-1" in {p["CPV"] for p in story.packages()},
                   "usesfoo to be listed after libfoo was installed")  # fmt: skip
    (usesfoo,) = [p for p in story.packages() if p["CPV"] == "app-misc/usesfoo-1"]
    assert "dev-libs/libfoo:0/1=" in usesfoo["RDEPEND"]
    # each of the three merges touched the installed-packages database several times; the
    # host was read again once it settled (at most once per merge on a slow machine)
    assert story.burst_from > 0
    assert 1 <= story.events("host read", story.burst_from) <= 3
    out = story.emerge("--getbinpkg", "--oneshot", "app-misc/usesfoo")
    assert "Emerging binary (1 of 1) app-misc/usesfoo-1" in out.stdout
    assert "app-misc/usesfoo-1" in story.installed()


def test_sixteen_parallel_downloads_verify(story: Story) -> None:
    listed = story.packages()

    small = [p for p in listed if p["CPV"] != "app-misc/big-1"]

    def fetch(i: int) -> bool:
        p = small[i % len(small)]
        data = httpx.get(f"{story.base}/{p['PATH']}", timeout=60).content
        return len(data) == int(p["SIZE"]) and hashlib.md5(data).hexdigest() == p["MD5"]  # noqa: S324

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(fetch, range(16)))
    p = listed[0]
    head = httpx.head(f"{story.base}/{p['PATH']}")
    assert head.status_code == 200 and head.headers["content-length"] == p["SIZE"]
    ranged = httpx.get(f"{story.base}/{p['PATH']}", headers={"Range": "bytes=10-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 90


def test_pin_and_unpin(story: Story) -> None:
    pinned = json.loads(story.client_run("pin", "@installed", "--json").stdout)
    cpvs = sorted(b["cpv"] for b in pinned["builds"] if b["ok"])
    assert "dev-libs/libfoo-1" in cpvs and pinned["failed"] == 0
    assert pinned["bytes"] == sum(b["size"] for b in pinned["builds"])
    with story.beta.node.client() as client:
        for build in pinned["builds"]:
            assert client.is_pinned(CID.from_text(build["binpkg"]))
    gone = json.loads(story.client_run("unpin", "app-misc/usesfoo", "--json").stdout)
    assert [b["cpv"] for b in gone["builds"]] == ["app-misc/usesfoo-1"]
    with story.beta.node.client() as client:
        assert not client.is_pinned(CID.from_text(gone["builds"][0]["binpkg"]))
    story.pins = {b["cpv"]: b["binpkg"] for b in pinned["builds"]}


def _block_file(node: ManagedNode, cid: CID) -> Path:
    """Where Kubo's flatfs keeps ``cid``."""
    return Path(FlatfsBlocks(node.repo_path / "blocks").path(cid))


def _assert_no_complete_file(story: Story, name: str, size: int) -> None:
    """No usable binpkg of ``name`` was left; wget's ``-O`` leaves a short ``.partial``.

    Portage's FETCHCOMMAND creates its output file before the answer arrives,
    and Portage deletes a stale ``.partial`` before the next fetch.
    """
    for path in story.pkgdir_files():
        if name in path.name:
            assert path.name.endswith(".partial"), path
            assert path.stat().st_size < size, (path, path.stat().st_size)


def test_tampered_bytes_fail_cleanly_then_build_from_source(story: Story) -> None:
    """The client's own Kubo repo hands out altered bytes (Kubo does not re-hash on read)."""
    recent = httpx.get(f"http://127.0.0.1:{story.port}/status").json()["downloads"]["recent"]
    (cid_text,) = {d["cid"] for d in recent if d["cpv"] == "app-misc/hello-1"}
    block = _block_file(story.beta.node, CID.from_text(cid_text))
    data = bytearray(block.read_bytes())
    size = len(data)
    data[len(data) // 2] ^= 0xFF
    block.write_bytes(bytes(data))
    for old in [p for p in story.pkgdir_files() if "hello" in p.name]:
        old.unlink()  # the copy fetched earlier would be reused without a download
    with pytest.raises(EmergeError):
        story.emerge("--getbinpkgonly", "--oneshot", "app-misc/hello")
    _assert_no_complete_file(story, "hello", size)
    failures = httpx.get(f"http://127.0.0.1:{story.port}/status").json()["downloads"]
    assert any("do not match manifest" in f["error"] for f in failures["failures"]), failures
    # the shim withdraws what it could not deliver: --getbinpkg now builds from source
    story.wait_for(lambda: "app-misc/hello-1" not in {p["CPV"] for p in story.packages()},
                   "the undeliverable hello to be withdrawn")  # fmt: skip
    out = story.emerge("--getbinpkg", "--oneshot", "app-misc/hello")
    assert "Emerging (1 of 1) app-misc/hello-1" in out.stdout
    assert "Emerging binary" not in out.stdout


def test_timestamp_rises_and_yanked_entry_disappears(story: Story) -> None:
    before = int(httpx.get(f"{story.base}/Packages").text.split("TIMESTAMP: ")[1].split()[0])
    shown = story.alpha.json("index", "show")["entries"]
    (libfoo,) = [e for e in shown if "/dev-libs/libfoo/" in e["key"] and "0/2" not in str(e)][:1]
    story.alpha.run("index", "yank", libfoo["key"], "--reason", "miscompiled (test)")
    story.commit("yank libfoo")
    story.wait_for(lambda: "dev-libs/libfoo-1" not in {p["CPV"] for p in story.packages()},
                   "the yanked libfoo to disappear")  # fmt: skip
    # the user's pin of it followed the index: the sync that saw the yank unpinned it
    with story.beta.node.client() as client:
        assert not client.is_pinned(CID.from_text(story.pins["dev-libs/libfoo-1"]))
    after = int(httpx.get(f"{story.base}/Packages").text.split("TIMESTAMP: ")[1].split()[0])
    assert after > before + 5


def test_kubo_stopped_mid_download_then_back(story: Story) -> None:
    (big,) = [p for p in story.packages() if p["CPV"] == "app-misc/big-1"]
    size = int(big["SIZE"])
    node = story.beta.node
    api = node.api_multiaddr
    url = f"{story.base}/{big['PATH']}"
    got = 0
    with pytest.raises(httpx.HTTPError), httpx.stream("GET", url, timeout=60) as answer:
        assert answer.status_code == 200
        for chunk in answer.iter_bytes():
            got += len(chunk)
            if node.running and got >= 1 << 20:
                node.stop()
    assert got < size
    failures = httpx.get(f"http://127.0.0.1:{story.port}/status").json()["downloads"]["failures"]
    assert any(f["cpv"] == "app-misc/big-1" and "Kubo" in f["error"] for f in failures), failures
    # while Kubo is down: a clear failure, nothing complete left behind, the index still listed
    with pytest.raises(EmergeError):
        story.emerge("--getbinpkgonly", "--oneshot", "app-misc/big")
    _assert_no_complete_file(story, "big", size)
    assert "app-misc/big-1" in {p["CPV"] for p in story.packages()}
    # Kubo back (on the same API address): the next emerge succeeds
    node.run("config", "Addresses.API", api)
    node.start(timeout=60)
    with node.client() as client:
        client.swarm_connect(story.alpha.node.swarm_addrs())
    story.emerge("--getbinpkgonly", "--oneshot", "app-misc/big")
    assert "app-misc/big-1" in story.installed()
    blob = story.client.eprefix / "usr/share/big/blob"
    assert blob.stat().st_size == BIG_BYTES


def test_same_isa_host_installs_an_o2_v3_build_that_exact_refuses(story: Story) -> None:
    """A host with -O3 -march=znver3 gives up its -O level under same-isa, not under exact."""
    make_conf = story.client.eprefix / "etc/portage/make.conf"
    with make_conf.open("a") as conf:
        conf.write('CFLAGS="-O3 -march=znver3 -pipe"\nCXXFLAGS="-O3 -march=znver3 -pipe"\n')
    config = story.beta.home / "config/ipfsbin.toml"
    usetest = {"app-misc/usetest-1"}

    def listed() -> set[str]:
        return {p["CPV"] for p in story.packages()} & usetest

    config.write_text('[host]\ntarget = "zen3"\n[policy]\nsharing = "exact"\n')
    story.stop_serve()
    story.start_serve()
    status = f"http://127.0.0.1:{story.port}/status"
    story.wait_for(lambda: httpx.get(status).json()["catalog"]["built_at"], "a catalog")
    assert httpx.get(status).json()["heads"][0]["entries"] > 0
    assert listed() == set()  # every usetest build is -O2
    found = json.loads(story.client_run("explain", "=app-misc/usetest-1", "--json").stdout)
    assert found["sharing"] == "exact"
    v3 = [c for c in found["candidates"] if c["target"] == "x86_64_v3"]
    assert v3 and v3[0]["verdict"] == "refused"
    assert {(r["axis"], r["kind"]) for r in v3[0]["refusals"]} == {("cflags", "preference")}
    assert "same-isa" in v3[0]["refusals"][0]["accepted_by"]

    config.write_text('[host]\ntarget = "zen3"\n[policy]\nsharing = "same-isa"\n')
    story.stop_serve()
    story.start_serve()
    story.wait_for(lambda: listed() == usetest, "usetest to be listed under same-isa")
    story.emerge("--getbinpkgonly", "--oneshot", "app-misc/usetest")
    (vdb,) = (story.client.eprefix / "var/db/pkg/app-misc").glob("usetest-1*")
    assert "-march=x86-64-v3" in (vdb / "CFLAGS").read_text()


def test_a_readable_repo_serves_binpkgs_from_its_block_files_still_checked(story: Story) -> None:
    (big,) = [p for p in story.packages() if p["CPV"] == "app-misc/big-1"]
    url = f"{story.base}/{big['PATH']}"
    assert len(httpx.get(url, timeout=60).content) == int(big["SIZE"])  # through the gateway
    recent = httpx.get(f"http://127.0.0.1:{story.port}/status").json()["downloads"]["recent"]
    (cid_text,) = {d["cid"] for d in recent if d["cpv"] == "app-misc/big-1"}
    blocks = FlatfsBlocks.open(story.beta.node.repo_path)
    assert blocks is not None
    parts = file_parts(CID.from_text(cid_text), blocks.read)
    leaves = [p for p in parts if isinstance(p, CID)]
    assert len(leaves) > 3
    story.stop_serve()
    story.beta.extra[REPO_ENV] = str(story.beta.node.repo_path)
    try:
        story.start_serve()
        assert story.log is not None
        assert "binpkg bytes from the repo's block files" in story.log.read_text()
        data = httpx.get(url, timeout=60).content
        assert hashlib.md5(data).hexdigest() == big["MD5"]  # noqa: S324 - Portage's own digest
        # altered bytes in a block file are caught as they were through the gateway
        leaf = Path(blocks.path(leaves[len(leaves) // 2]))
        good = leaf.read_bytes()
        leaf.write_bytes(bytes([good[0] ^ 0xFF]) + good[1:])
        try:
            got = 0
            with pytest.raises(httpx.HTTPError), httpx.stream("GET", url, timeout=60) as answer:
                for chunk in answer.iter_bytes():
                    got += len(chunk)
            assert got < int(big["SIZE"])
        finally:
            leaf.write_bytes(good)
        status = httpx.get(f"http://127.0.0.1:{story.port}/status").json()["downloads"]
        assert any("do not match manifest" in f["error"] for f in status["failures"]), status
    finally:
        story.stop_serve()
        del story.beta.extra[REPO_ENV]
        story.start_serve()
