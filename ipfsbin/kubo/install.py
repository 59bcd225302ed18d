"""Find or build the Kubo binary ipfsbin runs (one version, cached per user).

No distribution ships Kubo here and the npm/PyPI wrappers download it at
install time, so we build it from the Go module proxy once and keep it under
the cache directory, keyed by version. ``scripts/install-kubo`` calls
:func:`main` to build (if needed) and print the binary's path.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ipfsbin import paths
from ipfsbin.errors import KuboInstallError

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
_GO_FALLBACKS: Final = (Path("/usr/local/go/bin/go"),)
_GO_HINT: Final = (
    "install Go >= 1.25 (https://go.dev/dl or your package manager, e.g. `emerge dev-lang/go`) "
    "and run `ipfsbin node install` again"
)

Progress = Callable[[str], None]


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


def find_go() -> Path | None:
    """The ``go`` command: on PATH, else where the official tarball puts it."""
    found = shutil.which("go")
    if found:
        return Path(found)
    for candidate in _GO_FALLBACKS:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
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
    go = find_go()
    if go is None:
        raise KuboInstallError(
            "cannot build Kubo: the Go toolchain (`go`) is not on PATH nor in /usr/local/go/bin",
            hint=_GO_HINT,
        )
    version = _version()
    target = cached_binary_path(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two first runs at once (tests and the demo) would share one build module.
    with (target.parent / "build.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if find_kubo() == target:
            return target
        _build(go, version, target, progress or (lambda _line: None))
    got = binary_version(target)
    if got != version.removeprefix("v"):
        raise KuboInstallError(
            f"the Kubo binary built at {target} reports version {got!r}, "
            f"expected {version.removeprefix('v')!r}"
        )
    return target


def _build(go: Path, version: str, target: Path, progress: Progress) -> None:
    cache = target.parent
    module = cache / "module"
    module.mkdir(parents=True, exist_ok=True)
    for stale in ("go.mod", "go.sum"):
        (module / stale).unlink(missing_ok=True)
    env = {
        **os.environ,
        "GOTOOLCHAIN": os.environ.get("IPFSBIN_KUBO_GOTOOLCHAIN", KUBO_GOTOOLCHAIN),
        "GOBIN": str(cache),
    }
    progress(f"building Kubo {version} with {go} (takes a few minutes the first time)")
    # `go install pkg@version` asks the proxy for the module's version list,
    # which some proxies refuse; a tool requirement in a throwaway module
    # needs only the exact version.
    steps = [
        [str(go), "mod", "init", "ipfsbin.local/kubo-build"],
        [str(go), "get", "-tool", f"{KUBO_MODULE}@{version}"],
        [str(go), "install", "-trimpath", KUBO_MODULE],
    ]
    for argv in steps:
        progress(" ".join(argv[1:]))
        _run(argv, module, env, progress)


def _run(argv: list[str], cwd: Path, env: dict[str, str], progress: Progress) -> None:
    try:
        proc = subprocess.Popen(  # noqa: S603 - the go command we located, no shell
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    except OSError as exc:
        raise KuboInstallError(f"cannot run {argv[0]}: {exc}", hint=_GO_HINT) from exc
    tail: list[str] = []
    assert proc.stdout is not None  # noqa: S101 - set by stdout=PIPE
    for line in proc.stdout:
        line = line.rstrip()
        progress(line)
        tail = [*tail[-19:], line]
    code = proc.wait()
    if code != 0:
        raise KuboInstallError(
            f"`go {' '.join(argv[1:])}` failed with exit status {code}:\n" + "\n".join(tail),
            hint="check network access to the Go module proxy (GOPROXY) and free disk space",
        )


def main(argv: list[str] | None = None) -> int:
    """Build Kubo if needed and print the binary's path (what ``scripts/install-kubo`` runs)."""
    del argv

    def report(line: str) -> None:
        print(f"install-kubo: {line}", file=sys.stderr)

    try:
        path = ensure_kubo(report)
    except KuboInstallError as exc:
        print(f"install-kubo: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"install-kubo: hint: {exc.hint}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
