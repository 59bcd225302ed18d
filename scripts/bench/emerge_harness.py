"""Reusable pieces for timing a real ``emerge`` against a binhost URL.

A benchmark builds what it compares from these:

- :func:`build_at`: binpkgs built in a prefix at a given path and kept, with
  the ``Packages`` file Portage wrote, after that prefix is removed;
- :func:`client_prefix`: a fresh client Portage prefix (the test repository's
  ebuilds, its own PKGDIR and installed-package database), at the path the
  binpkgs were built at, so that they install as on a real host (EPREFIX "/"
  on both sides): Portage rewrites a binpkg built under another EPREFIX at
  merge time ("Adjusting Prefix", chpathtool, about a second per MB), which
  would hide the binhost's share of the time; :func:`timed_emerge` refuses
  such a run;
- :func:`point_binrepos`: its ``binrepos.conf`` names one binhost URL and
  nothing else (``verify-signature = false``, as ``ipfsbin setup-portage``
  writes for the shim, so both sides skip the same gpkg signature check);
- :func:`timed_emerge` / :func:`time_emerge`: the wall time of one emerge
  command there;
- :class:`Nginx`: Debian's nginx serving a directory (a PKGDIR whose
  ``Packages`` Portage wrote);
- :class:`ShimBinhost`: two Kubo nodes (a builder/maintainer and a client),
  binpkgs published, indexed, committed and followed, and ``ipfsbin serve``
  started for a given client prefix (the shim reads that prefix's Portage).

Example (an upgrade through the shim)::

    prefix = work / "prefix"
    binpkgs = build_at(prefix, work / "pkgdir", lambda p: p.build_all())
    with ShimBinhost(work) as shim:
        shim.publish([binpkgs[old_cpv]])
        client = client_prefix(eprefix=prefix)
        url = shim.serve_for(client)
        point_binrepos(client, url)
        timed_emerge(client, "--getbinpkgonly", "--oneshot", "app-misc/usetest")
        shim.publish([binpkgs[new_cpv]])         # the client follows the new head
        wait_listed(url, "app-misc/usetest-2")
        run = timed_emerge(client, "--getbinpkgonly", "--update", "app-misc/usetest")
        print(run.seconds)

Import it from another bench script with
``sys.path.insert(0, str(ROOT / "scripts/bench")); import emerge_harness``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from tests.playground.builder import (  # noqa: E402
    BuilderPlayground,
    binpkgs_in,
    parse_packages_index,
)

__all__ = [
    "EmergeRun",
    "Nginx",
    "ShimBinhost",
    "build_at",
    "client_prefix",
    "free_port",
    "installed",
    "listed_cpvs",
    "point_binrepos",
    "time_emerge",
    "timed_emerge",
    "wait_listed",
]

IPFSBIN = str(Path(sys.executable).with_name("ipfsbin"))
PROFILE = "default/linux/amd64/23.0"
# the variables that make an ipfsbin child read the client prefix's Portage
PORTAGE_KEYS = ("PORTAGE_OVERRIDE_EPREFIX", "PORTAGE_REPOSITORIES", "PYTHONPATH")
# Portage's default asks binhosts for signed gpkgs; the playgrounds build unsigned ones
EMERGE_ENV = {"FEATURES": "-binpkg-request-signature"}
# what Portage prints when it rewrites a binpkg built under another EPREFIX
ADJUSTING = "Adjusting Prefix"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class EmergeRun:
    seconds: float
    args: tuple[str, ...]
    output: str


def client_prefix(
    ebuilds: Mapping[str, Mapping[str, str]] | None = None, *, eprefix: Path | None = None
) -> BuilderPlayground:
    """A fresh client prefix (nothing installed); ``cleanup()`` it when done.

    At ``eprefix`` if given (whatever was there is removed first), else in a
    new temporary directory.
    """
    if eprefix is not None and eprefix.exists():
        shutil.rmtree(eprefix)
    return BuilderPlayground.create(ebuilds=ebuilds, eprefix=eprefix)


def build_at(
    eprefix: Path,
    pkgdir: Path,
    build: Callable[[BuilderPlayground], object],
    ebuilds: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Path]:
    """CPV → binpkg built under ``eprefix``, kept in ``pkgdir`` with Portage's ``Packages``.

    ``build(playground)`` runs the emerges (``--buildpkg`` or ``--buildpkgonly``
    into the playground's PKGDIR) in a fresh prefix at ``eprefix``; the PKGDIR
    is then moved to ``pkgdir`` and the prefix removed, for clients created
    at the same path with :func:`client_prefix`.
    """
    builder = client_prefix(ebuilds, eprefix=eprefix)
    try:
        build(builder)
        pkgdir.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(builder.pkgdir, pkgdir)
    finally:
        builder.cleanup()
    return binpkgs_in(pkgdir)


def point_binrepos(client: BuilderPlayground, url: str, *, name: str = "bench") -> Path:
    """Make ``url`` the prefix's only binhost; returns the ``binrepos.conf`` file written."""
    conf_dir = client.eprefix / "etc/portage/binrepos.conf"
    if conf_dir.is_file():
        conf_dir.unlink()
    conf_dir.mkdir(parents=True, exist_ok=True)
    for old in conf_dir.glob("*.conf"):
        old.unlink()
    conf = conf_dir / f"{name}.conf"
    conf.write_text(
        f"[{name}]\nsync-uri = {url.rstrip('/')}\npriority = 10\nverify-signature = false\n"
    )
    return conf


def timed_emerge(
    client: BuilderPlayground,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
) -> EmergeRun:
    """Run the real emerge in ``client`` and time it (raises ``EmergeError`` on failure).

    A run in which Portage adjusted a binpkg's EPREFIX raises ``RuntimeError``:
    its time would be chpathtool's, not the binhost's (see :func:`build_at`).
    """
    started = time.perf_counter()
    done = client.emerge(*args, env={**EMERGE_ENV, **(env or {})}, timeout=timeout)
    seconds = time.perf_counter() - started
    if ADJUSTING in done.stdout:  # stderr goes to stdout (run_emerge)
        raise RuntimeError(f"emerge {' '.join(args)} adjusted a binpkg built under another EPREFIX")
    return EmergeRun(seconds=seconds, args=args, output=done.stdout)


def time_emerge(
    url: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    ebuilds: Mapping[str, Mapping[str, str]] | None = None,
    eprefix: Path | None = None,
) -> EmergeRun:
    """One emerge in a fresh client prefix whose binrepos.conf points at ``url``.

    ``eprefix``: the path the binpkgs were built at (see :func:`build_at`).
    """
    client = client_prefix(ebuilds, eprefix=eprefix)
    try:
        point_binrepos(client, url)
        return timed_emerge(client, *args, env=env)
    finally:
        client.cleanup()


def installed(client: BuilderPlayground) -> set[str]:
    """The CPVs installed in ``client`` (its installed-package database)."""
    vdb = client.eprefix / "var/db/pkg"
    if not vdb.is_dir():
        return set()
    return {f"{c.name}/{p.name}" for c in vdb.iterdir() if c.is_dir() for p in c.iterdir()}


def listed_cpvs(url: str) -> set[str]:
    """The CPVs a binhost's ``Packages`` lists (``url`` is the binrepos sync-uri)."""
    with urllib.request.urlopen(f"{url.rstrip('/')}/Packages", timeout=10) as answer:  # noqa: S310
        return {p["CPV"] for p in parse_packages_index(answer.read().decode())}


def wait_listed(url: str, cpv: str, timeout: float = 60) -> float:
    """Wait until the binhost at ``url`` lists ``cpv``; the seconds it took."""
    started = time.monotonic()
    _wait(f"{cpv} to be listed", lambda: cpv in listed_cpvs(url), timeout, None)
    return time.monotonic() - started


def _accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port)):
        return True


def _wait(what: str, ready: Any, timeout: float, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Nginx:
    """Debian's nginx serving ``root`` on a loopback port; a context manager."""

    def __init__(self, root: Path, work: Path, rate: int = 0) -> None:
        self.root = root
        self.work = work
        self.rate = rate  # bytes per second per connection (nginx's limit_rate); 0: no limit
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise SystemExit("this benchmark needs nginx: apt-get install nginx")
        self.work.mkdir(parents=True, exist_ok=True)
        conf = self.work / "nginx.conf"
        # as root, nginx's workers would run as nobody and not see a private directory
        user = "user root;\n" if os.getuid() == 0 else ""
        conf.write_text(
            f"{user}daemon off; pid {self.work}/nginx.pid; error_log {self.work}/nginx.err;\n"
            "events {}\n"
            f"http {{ access_log off; sendfile on; limit_rate {self.rate}; "
            f"server {{ listen 127.0.0.1:{self.port}; root {self.root}; }} }}\n"
        )
        self.proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(self.work)])
        _wait("nginx", lambda: _accepts(self.port), 30, self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            _stop(self.proc)


@dataclass
class _Home:
    path: Path
    node: ManagedNode
    extra: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.extra,
            "IPFSBIN_HOME": str(self.path),
            "IPFSBIN_API": self.node.api_multiaddr,
            # ipfsbin serve reads binpkgs through the node's gateway (an OS-chosen port)
            "IPFSBIN_GATEWAY": self.node.gateway_url,
            "IPFSBIN_SYSTEM_CONFIG": str(self.path / "no-system-config.toml"),
        }

    def run(self, *args: str) -> str:
        done = subprocess.run([IPFSBIN, *args], env=self.env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"ipfsbin {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json"))


class ShimBinhost:
    """A builder/maintainer node ("alpha") and a client node ("beta") following its index.

    :meth:`publish` publishes binpkgs from alpha, adds them to the index,
    commits, publishes the head and has beta sync. :meth:`serve_for` starts
    ``ipfsbin serve`` on beta for one client prefix and returns the sync-uri
    to put in that prefix's binrepos.conf.
    """

    def __init__(self, work: Path) -> None:
        self.work = work
        self.nodes: list[ManagedNode] = []
        self.serves: list[tuple[subprocess.Popen[bytes], Any]] = []
        self.name = ""
        self.alpha: _Home
        self.beta: _Home

    def __enter__(self) -> ShimBinhost:
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            for role in ("alpha", "beta"):
                node = ManagedNode(self.work / f"{role}-kubo", profile="test", routing="dht",
                                   extra_config={"Ipns.MaxCacheTTL": "1s"})  # fmt: skip
                node.start(timeout=60)
                self.nodes.append(node)
            alpha_node, beta_node = self.nodes
            with beta_node.client() as client:
                client.swarm_connect(alpha_node.swarm_addrs())
            self.alpha = _Home(self.work / "alpha", alpha_node)
            self.beta = _Home(self.work / "beta", beta_node)
            builder = self.alpha.json("key", "gen", "builder")["key_id"]
            self.alpha.json("key", "gen", "maintainer")
            self._root = self.alpha.json(
                "index", "init", "--key", "maintainer", "--builder", builder
            )["root"]
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_serving()
        for node in self.nodes:
            node.stop()

    def stop_serving(self) -> None:
        """Stop every ``ipfsbin serve`` :meth:`serve_for` started."""
        while self.serves:
            proc, log = self.serves.pop()
            _stop(proc, signal.SIGINT)
            log.close()

    def publish(self, binpkgs: Sequence[Path], *, allow_restricted: bool = True) -> None:
        """Publish, index, commit and publish the head; beta syncs to it."""
        flags = ["--allow-restricted"] if allow_restricted else []
        published = self.alpha.json("publish", "--key", "builder", "--profile", PROFILE, *flags,
                                    *map(str, binpkgs))  # fmt: skip
        self.alpha.run("index", "add", *(p["attestation"] for p in published))
        self.alpha.run("index", "commit", "-m", f"{len(published)} builds", "--key", "maintainer")
        name = self.alpha.json("index", "publish", "--key", "maintainer", "--allow-offline")["name"]
        if not self.name:
            self.name = name
            self.beta.run("subscribe", name, "--root", self._root)
        outcomes = self.beta.json("sync")
        if not all(o["outcome"] in ("accepted", "current") for o in outcomes):
            raise RuntimeError(f"the client did not accept the new head: {outcomes}")

    def forget_binpkgs(self) -> None:
        """Garbage-collect beta's repo: binpkg blocks are then only on alpha (a cold fetch)."""
        self.beta.node.run("repo", "gc", timeout=600)

    def serve_for(self, client: BuilderPlayground) -> str:
        """Start ``ipfsbin serve`` on beta for ``client``'s Portage; the sync-uri to use."""
        port = free_port()
        portage = client.env()
        env = {**self.beta.env(), **{k: portage[k] for k in PORTAGE_KEYS}}
        log = (self.work / f"serve-{port}.log").open("wb")
        proc = subprocess.Popen(
            [IPFSBIN, "serve", "--listen", f"127.0.0.1:{port}", "--interval", "0.5"],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
        self.serves.append((proc, log))
        url = f"http://127.0.0.1:{port}/{self.name}"
        _wait("ipfsbin serve", lambda: bool(listed_cpvs(url)), 180, proc)
        return url
