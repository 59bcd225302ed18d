"""The end-to-end demo behind ``scripts/demo`` (run that; it prepares the machine).

Two Kubo nodes on loopback stand for two hosts. On the first, a builder
compiles small real ebuilds with ``emerge --buildpkg`` and publishes the
binpkgs; a maintainer accepts them into a signed index, commits and
publishes the head over IPNS. On the second, a client subscribes under the
pinned trust root, syncs, fetches a package by its CID and checks it against
the signed manifest. Then the story ends where the user lives: a client
Portage playground runs ``ipfsbin setup-portage`` and ``ipfsbin serve``, and
``emerge --getbinpkgonly`` installs what the builder built; ``ipfsbin
explain`` says why a build was refused (its sub-slot, its USE flags).
Finally the maintainer yanks an entry and the client follows the update.
Every step is a real ``ipfsbin`` command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ipfsbin.codec import dagcbor  # noqa: E402
from ipfsbin.codec.cid import CID  # noqa: E402
from ipfsbin.kubo.node import ManagedNode  # noqa: E402
from tests.playground.builder import BuilderPlayground  # noqa: E402

IPFSBIN = str(Path(sys.executable).with_name("ipfsbin"))


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


class Host:
    """One machine of the story: an ipfsbin home and the Kubo node it talks to."""

    def __init__(self, name: str, home: Path, node: ManagedNode) -> None:
        self.name = name
        self.home = home
        self.node = node
        self.portage_env: dict[str, str] = {}
        """The Portage environment of this host's playground, once it has one."""

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.portage_env,
            "IPFSBIN_HOME": str(self.home),
            "IPFSBIN_API": self.node.api_multiaddr,
            # the node's gateway listens on an OS-chosen port that its config does not name
            "IPFSBIN_GATEWAY": self.node.gateway_url,
            "IPFSBIN_SYSTEM_CONFIG": str(self.home / "no-system-config.toml"),
        }

    def run(self, *args: str, show: bool = True) -> str:
        env = self.env()
        if show:
            print(f"[{self.name}] $ ipfsbin {' '.join(shlex.quote(a) for a in args)}", flush=True)
        done = subprocess.run(
            [IPFSBIN, *args], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"demo: `ipfsbin {' '.join(args)}` failed on {self.name}")
        return done.stdout

    def run_json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json"))

    def show(self, *args: str) -> None:
        out = self.run(*args)
        print("    " + out.rstrip().replace("\n", "\n    "))


def start_node(path: Path) -> ManagedNode:
    node = ManagedNode(path, profile="test", routing="dht", extra_config={"Ipns.MaxCacheTTL": "1s"})
    node.start()
    return node


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Binhost:
    """The client's playground and its running ``ipfsbin serve``; ``close`` ends both."""

    def __init__(self, client: BuilderPlayground, serve: subprocess.Popen[bytes], log: Any) -> None:
        self.client = client
        self.serve = serve
        self.log = log

    def close(self) -> None:
        self.serve.send_signal(signal.SIGINT)
        try:
            self.serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.serve.kill()
            self.serve.wait()
        self.log.close()
        self.client.cleanup()


def _wait_for(url: str, serve: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            raise SystemExit(f"demo: ipfsbin serve exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"demo: ipfsbin serve did not answer:\n{log.read_text()}")


def _emerge(client: BuilderPlayground, *args: str) -> None:
    print(f"[beta] $ emerge {' '.join(args)}", flush=True)
    out = client.emerge(*args).stdout
    for line in out.splitlines():
        if line.startswith((">>> Emerging", ">>> Completed", " * ")) or "MD5 SHA1 size" in line:
            print(f"    {line.strip()}")


def binhost_story(
    base: Path,
    alpha: Host,
    beta: Host,
    builder: BuilderPlayground,
    binpkgs: dict[str, Path],
    published: list[dict[str, Any]],
    name: str,
) -> Binhost:
    """The client's Portage installs the builder's packages through ipfsbin serve."""
    step("the client host: its own Portage prefix, read through the portage library")
    client = BuilderPlayground.create()
    portage_env = client.env()
    beta.portage_env = {
        key: portage_env[key]
        for key in ("PORTAGE_OVERRIDE_EPREFIX", "PORTAGE_REPOSITORIES", "PYTHONPATH")
    }
    port = _free_port()
    (beta.home / "config").mkdir(parents=True, exist_ok=True)
    (beta.home / "config/ipfsbin.toml").write_text(f'[serve]\nlisten = "127.0.0.1:{port}"\n')
    beta.show("host")

    step("ipfsbin setup-portage points the client's binrepos.conf at the local binhost")
    beta.show("setup-portage", "--root", str(client.eprefix), "--user", "nobody")
    conf = client.eprefix / "etc/portage/binrepos.conf/ipfsbin.conf"
    print("    " + conf.read_text().rstrip().replace("\n", "\n    "))

    step("ipfsbin serve: Portage's binhost protocol over the verified catalog")
    log_path = base / "serve.log"
    log = log_path.open("wb")
    serve = subprocess.Popen(  # noqa: S603 - our own command
        [IPFSBIN, "serve", "--interval", "0.5"], env=beta.env(), stdout=log, stderr=log
    )
    binhost = Binhost(client, serve, log)
    try:
        _wait_for(f"http://127.0.0.1:{port}/status", serve, log_path)
        for line in log_path.read_text().splitlines():
            if line.startswith("ipfsbin: "):  # the start-up lines (the rest is JSON logs)
                print(f"    {line}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}/Packages") as answer:  # noqa: S310
            listed = [ln.split(": ", 1)[1] for ln in answer.read().decode().splitlines()
                      if ln.startswith("CPV: ")]  # fmt: skip
        print(f"    Packages lists {len(listed)}: {', '.join(sorted(listed))}")

        step("a sub-slot refusal: usesfoo was built against dev-libs/libfoo:0/1")
        beta.show("explain", "app-misc/usesfoo")

        step("emerge --getbinpkgonly installs the builder's binaries through the shim")
        _emerge(client, "--getbinpkgonly", "--oneshot", "app-misc/usetest", "dev-libs/libfoo")
        # libfoo:0/1 is installed now: the catalog is rebuilt and usesfoo fits
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "usesfoo" not in _packages(port, name):
            time.sleep(0.5)
        _emerge(client, "--getbinpkgonly", "--oneshot", "app-misc/usesfoo")

        step("a USE refusal: the usetest built with USE=-bar is never listed")
        beta.show("explain", "app-misc/usetest")
    except BaseException:
        binhost.close()
        raise
    return binhost


def _packages(port: int, name: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}/Packages") as answer:  # noqa: S310
        text: str = answer.read().decode()
        return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the demo directory")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ipfsbin-demo-"))
    nodes: list[ManagedNode] = []
    builder_host: BuilderPlayground | None = None
    stack: list[Any] = []
    started = time.monotonic()
    try:
        step("two Kubo nodes on loopback: 'alpha' (builder and maintainer), 'beta' (client)")
        alpha_node = start_node(base / "alpha-kubo")
        nodes.append(alpha_node)
        beta_node = start_node(base / "beta-kubo")
        nodes.append(beta_node)
        with beta_node.client() as beta:
            beta.swarm_connect(alpha_node.swarm_addrs())
        alpha = Host("alpha", base / "alpha", alpha_node)
        beta_host = Host("beta", base / "beta", beta_node)
        print(f"    alpha {alpha_node.peer_id}\n    beta  {beta_node.peer_id}")

        step("building small real ebuilds with emerge --buildpkg (a Portage prefix playground)")
        builder_host = BuilderPlayground.create()
        # usetest pulls in hello, usesfoo pulls in libfoo: what the story shares, in one emerge
        builder_host.emerge("--oneshot", "--buildpkg", "--quiet-build=y",
                            "app-misc/usetest", "app-misc/usesfoo")  # fmt: skip
        binpkgs = builder_host.refresh()
        cpvs = ("app-misc/usetest-1", "dev-libs/libfoo-1", "app-misc/usesfoo-1")
        shareable = [binpkgs[cpv] for cpv in cpvs]
        # the same package with other USE flags, built into its own PKGDIR
        other_use = base / "pkgdir-other-use"
        builder_host.emerge("--oneshot", "--buildpkg", "--quiet-build=y", "app-misc/usetest",
                            env={"PKGDIR": str(other_use), "USE": "-bar"})  # fmt: skip
        shareable += sorted(other_use.rglob("*.gpkg.tar"))
        for path in shareable:
            print(f"    {path.name} ({path.stat().st_size} bytes)")

        step("the builder makes a key and publishes its binpkgs")
        builder_id = alpha.run_json("key", "gen", "builder")["key_id"]
        alpha.run_json("key", "gen", "maintainer")
        published = alpha.run_json(
            "publish",
            "--key",
            "builder",
            "--profile",
            "default/linux/amd64/23.0",
            *map(str, shareable),
        )
        # usetest's USE=foo pulls in hello, the playground's RESTRICT=bindist program:
        # published here on purpose (--allow-restricted) so the client can install usetest
        published += alpha.run_json(
            "publish", "--key", "builder", "--profile", "default/linux/amd64/23.0",
            "--allow-restricted", str(binpkgs["app-misc/hello-1"]),
        )  # fmt: skip
        for item in published:
            print(f"    {item['cpv']}: manifest {item['manifest']}")
            print(f"        attestation {item['attestation']}")

        step("the maintainer makes a trust root listing that builder, and accepts the packages")
        root = alpha.run_json("index", "init", "--key", "maintainer", "--builder", builder_id)
        alpha.show("index", "add", *(item["attestation"] for item in published))
        alpha.show("index", "commit", "-m", "first builds", "--key", "maintainer")
        alpha.show("index", "log")
        record = alpha.run_json("index", "publish", "--key", "maintainer", "--allow-offline")
        name = record["name"]
        print(f"    /ipns/{name} -> {record['value']} (sequence {record['sequence']})")

        step("the client subscribes under the pinned trust root and syncs")
        root_cid = root["root"]
        beta_host.show("subscribe", name, "--root", root_cid)
        beta_host.show("sync")
        beta_host.show("status")

        step("the client fetches a package by CID and checks it against the signed manifest")
        manifest_cid = CID.from_text(published[0]["manifest"])
        with beta_node.client() as beta:
            manifest = dagcbor.decode_block(manifest_cid, beta.block_get(manifest_cid))
            data = beta.cat_bytes(manifest["binpkg"])
        ok = hashlib.sha256(data).digest() == manifest["sha256"]
        verdict = "matches" if ok else "DIFFERS"
        print(f"    {len(data)} bytes from {manifest['binpkg']}: sha256 {verdict}")
        if not ok:
            raise SystemExit("demo: fetched bytes do not match the manifest")

        serve = binhost_story(base, alpha, beta_host, builder_host, binpkgs, published, name)
        stack.append(serve)

        step("the maintainer yanks one entry, commits and publishes; the client follows")
        key = alpha.run_json("index", "show")["entries"][0]["key"]
        alpha.show("index", "yank", key, "--reason", "miscompiled (demo)")
        alpha.show("index", "commit", "-m", "yank a bad build", "--key", "maintainer")
        record = alpha.run_json("index", "publish", "--key", "maintainer", "--allow-offline")
        print(f"    /ipns/{name} -> {record['value']} (sequence {record['sequence']})")
        beta_host.show("sync")
        alpha.show("index", "diff", "HEAD~1")

        step("audit: the commit chain mirrored into git")
        audit = base / "audit.git"
        alpha.show("index", "export-git", str(audit))
        git = shutil.which("git")
        if git is None:
            print(f"    (install git to read it: git -C {audit} log --stat)")
        else:
            log = subprocess.run(
                [git, "-C", str(audit), "log", "--stat", "--format=%h %s"],
                capture_output=True,
                text=True,
                check=False,
            )
            print("    " + log.stdout.rstrip().replace("\n", "\n    "))
    finally:
        for item in reversed(stack):
            item.close()
        for node in nodes:
            node.stop()
        if builder_host is not None:
            builder_host.cleanup()
        if args.keep:
            print(f"\ndemo directory kept at {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    step(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
