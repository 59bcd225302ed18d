"""Find or build the Kubo binary ipfsbin runs (one version, cached per user).

No distribution ships Kubo here and the npm/PyPI wrappers download it at
install time, so we build it from the Go module proxy once and keep it under
the cache directory, keyed by version. ``scripts/install-kubo`` calls
:func:`main` to build (if needed) and print the binary's path.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Final

from ipfsbin import paths
from ipfsbin.errors import KuboInstallError
from ipfsbin.kubo.gobuild import GoBuild, Progress, build_once, find_go, script_main

__all__ = [
    "KUBO_GOTOOLCHAIN",
    "KUBO_MODULE",
    "KUBO_VERSION",
    "binary_version",
    "cached_binary_path",
    "ensure_kubo",
    "find_go",
    "find_kubo",
    "main",
]

KUBO_VERSION: Final = "v0.39.0"
KUBO_MODULE: Final = "github.com/ipfs/kubo/cmd/ipfs"
# Kubo v0.39.0 depends on cockroachdb/swiss, whose runtime hooks stop at Go
# 1.25; the go command fetches this toolchain from the module proxy.
KUBO_GOTOOLCHAIN: Final = "go1.25.4"


def _version() -> str:
    return os.environ.get("IPFSBIN_KUBO_VERSION", KUBO_VERSION)


def cached_binary_path(version: str | None = None) -> Path:
    """Where the build of ``version`` is kept (it may not exist yet)."""
    return paths.cache_dir() / "kubo" / (version or _version()) / "ipfs"


def binary_version(binary: Path) -> str | None:
    """``"0.39.0"`` as reported by ``ipfs version``, or None if it does not run."""
    try:
        done = subprocess.run(  # noqa: S603 - a binary we chose, no shell
            [str(binary), "version"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "IPFS_TELEMETRY": "off"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    prefix = "ipfs version "
    if done.returncode != 0 or not out.startswith(prefix):
        return None
    return out[len(prefix) :]


def find_kubo() -> Path | None:
    """The Kubo binary to use without building: ``IPFSBIN_KUBO_BIN``, or a matching cached build.

    The override is trusted as given (any version); the cached build must
    report the expected version.
    """
    override = os.environ.get("IPFSBIN_KUBO_BIN")
    if override:
        path = Path(override)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    version = _version()
    path = cached_binary_path(version)
    if path.is_file() and binary_version(path) == version.removeprefix("v"):
        return path
    return None


def ensure_kubo(progress: Progress | None = None) -> Path:
    """A usable Kubo binary, building it with Go the first time (takes minutes).

    Raises ``KuboInstallError`` when ``IPFSBIN_KUBO_BIN`` points nowhere, when
    Go is missing, or when the build fails or reports another version.
    """
    found = find_kubo()
    if found is not None:
        return found
    override = os.environ.get("IPFSBIN_KUBO_BIN")
    if override:
        raise KuboInstallError(
            f"IPFSBIN_KUBO_BIN={override} is not an executable file",
            hint="point IPFSBIN_KUBO_BIN at a Kubo `ipfs` binary, or unset it to build one",
        )
    version = _version()
    target = cached_binary_path(version)
    build_once(
        GoBuild(
            label=f"Kubo {version}",
            directory=target.parent,
            packages=(KUBO_MODULE,),
            version=version,
            toolchain=os.environ.get("IPFSBIN_KUBO_GOTOOLCHAIN", KUBO_GOTOOLCHAIN),
            ready=lambda: find_kubo() == target,
        ),
        progress,
    )
    got = binary_version(target)
    if got != version.removeprefix("v"):
        raise KuboInstallError(
            f"the Kubo binary built at {target} reports version {got!r}, "
            f"expected {version.removeprefix('v')!r}"
        )
    return target


def main(argv: list[str] | None = None) -> int:
    """Build Kubo if needed and print the binary's path (what ``scripts/install-kubo`` runs)."""
    del argv
    return script_main("install-kubo", ensure_kubo)


if __name__ == "__main__":
    raise SystemExit(main())
