"""Find or build IPFS Cluster's commands (one pinned version, cached per user).

Built like Kubo (:mod:`ipfsbin.kubo.gobuild`): ``ipfs-cluster-service`` and
``ipfs-cluster-ctl`` of :data:`CLUSTER_VERSION` from a throwaway module, into
the cache directory keyed by version. ``scripts/install-cluster`` calls
:func:`main`; ``IPFSBIN_CLUSTER_DIR`` points at a directory holding both
commands instead.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ipfsbin import paths
from ipfsbin.errors import KuboInstallError
from ipfsbin.kubo.gobuild import GoBuild, Progress, build_once, script_main

__all__ = [
    "CLUSTER_COMMANDS",
    "CLUSTER_MODULE",
    "CLUSTER_VERSION",
    "ClusterBinaries",
    "cached_cluster_dir",
    "cluster_version",
    "ensure_cluster",
    "find_cluster",
    "main",
]

CLUSTER_VERSION: Final = "v1.1.6"
CLUSTER_MODULE: Final = "github.com/ipfs-cluster/ipfs-cluster"
CLUSTER_COMMANDS: Final = ("ipfs-cluster-service", "ipfs-cluster-ctl")
# v1.1.6's go.mod asks for Go >= 1.26: the local toolchain when it is new
# enough, else the go command fetches one.
_TOOLCHAIN: Final = "local+auto"


@dataclass(frozen=True)
class ClusterBinaries:
    """Where ``ipfs-cluster-service`` and ``ipfs-cluster-ctl`` are."""

    service: Path
    ctl: Path

    @property
    def directory(self) -> Path:
        return self.service.parent


def cached_cluster_dir(version: str = CLUSTER_VERSION) -> Path:
    """Where the build of ``version`` is kept (it may not exist yet)."""
    return paths.cache_dir() / "ipfs-cluster" / version


def cluster_version(binary: Path) -> str | None:
    """``"1.1.6"`` as a Cluster command reports it, or None if it does not run."""
    try:
        done = subprocess.run(  # noqa: S603 - a binary we chose, no shell
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    words = done.stdout.split()
    if done.returncode != 0 or len(words) < 3 or words[1] != "version":
        return None
    return words[2].split("+")[0]


def _binaries(directory: Path) -> ClusterBinaries:
    service, ctl = (directory / name for name in CLUSTER_COMMANDS)
    return ClusterBinaries(service=service, ctl=ctl)


def _usable(binaries: ClusterBinaries) -> bool:
    return all(p.is_file() and os.access(p, os.X_OK) for p in (binaries.service, binaries.ctl))


def find_cluster() -> ClusterBinaries | None:
    """The commands to use without building: ``IPFSBIN_CLUSTER_DIR``, or a matching cached build."""
    override = os.environ.get("IPFSBIN_CLUSTER_DIR")
    if override:
        given = _binaries(Path(override))
        return given if _usable(given) else None
    cached = _binaries(cached_cluster_dir())
    want = CLUSTER_VERSION.removeprefix("v")
    if _usable(cached) and all(cluster_version(p) == want for p in (cached.service, cached.ctl)):
        return cached
    return None


def ensure_cluster(progress: Progress | None = None) -> ClusterBinaries:
    """Usable Cluster commands, building them with Go the first time (takes minutes)."""
    found = find_cluster()
    if found is not None:
        return found
    override = os.environ.get("IPFSBIN_CLUSTER_DIR")
    if override:
        raise KuboInstallError(
            f"IPFSBIN_CLUSTER_DIR={override} does not hold executable "
            f"{' and '.join(CLUSTER_COMMANDS)}",
            hint="point IPFSBIN_CLUSTER_DIR at a directory with both commands, or unset it",
        )
    directory = cached_cluster_dir()
    build_once(
        GoBuild(
            label=f"IPFS Cluster {CLUSTER_VERSION}",
            directory=directory,
            packages=tuple(f"{CLUSTER_MODULE}/cmd/{name}" for name in CLUSTER_COMMANDS),
            version=CLUSTER_VERSION,
            toolchain=os.environ.get("IPFSBIN_CLUSTER_GOTOOLCHAIN", _TOOLCHAIN),
            ready=lambda: find_cluster() is not None,
        ),
        progress,
    )
    found = find_cluster()
    if found is None:
        raise KuboInstallError(
            f"the IPFS Cluster commands built in {directory} do not report version "
            f"{CLUSTER_VERSION.removeprefix('v')}"
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """Build Cluster if needed and print the directory of its commands."""
    del argv
    return script_main("install-cluster", lambda say: ensure_cluster(say).directory)


if __name__ == "__main__":
    raise SystemExit(main())
