"""The end-to-end demo behind ``scripts/demo`` (run that; it prepares the machine).

Two Kubo nodes on loopback stand for two hosts. On the first, a builder
compiles small real ebuilds with ``emerge --buildpkg`` and publishes the
binpkgs; a maintainer accepts them into a signed index, commits and
publishes the head over IPNS. On the second, a client subscribes under the
pinned trust root, syncs, fetches a package by its CID and checks it against
the signed manifest; then the maintainer yanks an entry and the client
follows the update. Every step is a real ``ipfsbin`` command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
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

    def run(self, *args: str, show: bool = True) -> str:
        env = {**os.environ, "IPFSBIN_HOME": str(self.home), "IPFSBIN_API": self.node.api_multiaddr}
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the demo directory")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ipfsbin-demo-"))
    nodes: list[ManagedNode] = []
    builder_host: BuilderPlayground | None = None
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
        binpkgs = builder_host.build_all()
        cpvs = ("app-misc/usetest-1", "dev-libs/libfoo-1", "app-misc/usesfoo-1")
        shareable = [binpkgs[cpv] for cpv in cpvs]
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
