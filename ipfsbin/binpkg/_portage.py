"""The one place that calls Portage, and maps its errors to ``BinpkgError``.

Portage's readers want a ``config`` object. A real one is built once per
process from an empty private configuration root (no /etc/portage, no
repository of the host), which takes a few tens of milliseconds and works on
any machine that has the ``portage`` package, Gentoo or not.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from ipfsbin.errors import BinpkgError

__all__ = ["XpakLayout", "gpkg_metadata", "reader_settings", "xpak_layout", "xpak_metadata"]

_REPO = "ipfsbin_reader"


@functools.cache
def reader_settings() -> Any:
    """A Portage ``config`` good for reading binpkgs; built once, never from the host's files."""
    import portage

    root = tempfile.mkdtemp(prefix="ipfsbin-portage-")
    atexit.register(shutil.rmtree, root, True)
    repo = Path(root, "repo")
    (repo / "profiles").mkdir(parents=True)
    (repo / "profiles" / "repo_name").write_text(f"{_REPO}\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORTAGE_REPOSITORIES": f"[DEFAULT]\nmain-repo = {_REPO}\n[{_REPO}]\nlocation = {repo}\n",
        # Reading checks checksums only; signatures are the caller's business
        # (ipfsbin carries its own trust), so gpg is never started.
        "FEATURES": "binpkg-ignore-signature",
        "GPG_VERIFY_USER_DROP": "",
        "GPG_VERIFY_GROUP_DROP": "",
    }
    return portage.config(
        config_root=root, target_root=root, eprefix=root, local_config=False, env=env
    )


def _portage_errors() -> tuple[type[BaseException], ...]:
    from portage.exception import PortageException

    return (PortageException, tarfile.TarError, OSError, EOFError, ValueError, KeyError)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def gpkg_metadata(path: Path) -> dict[str, bytes]:
    """The metadata files of a GPKG, after Portage checked the Manifest checksums of all parts."""
    import portage.gpkg

    pkg = portage.gpkg.gpkg(reader_settings(), None, str(path), verify_signature=False)
    try:
        # Full verification covers the image too; get_metadata alone checks
        # only the metadata part, and a corrupt image would pass.
        pkg._verify_binpkg(metadata_only=False)
        metadata = pkg.get_metadata()
    except _portage_errors() as exc:
        raise BinpkgError(
            f"{path}: Portage rejects this gpkg: {_one_line(exc)}",
            hint="the file is truncated, corrupt or not a binary package; "
            "rebuild it or fetch it again",
        ) from exc
    if not isinstance(metadata, dict):
        raise BinpkgError(f"{path}: Portage found no metadata in this gpkg")
    return {str(k): bytes(v) for k, v in metadata.items()}


class XpakLayout:
    """Where the parts of an XPAK binpkg lie: the tar is the first ``tar_size`` bytes."""

    def __init__(self, tar_size: int) -> None:
        self.tar_size = tar_size


def xpak_layout(path: Path) -> XpakLayout | None:
    """The layout of an XPAK binpkg, or None when the file has no xpak segment."""
    import portage.xpak

    tbz2 = portage.xpak.tbz2(str(path))
    try:
        found = tbz2.scan()
    except _portage_errors():
        return None
    if not found:
        return None
    return XpakLayout(tar_size=os.path.getsize(path) - tbz2.xpaksize)


def xpak_metadata(path: Path) -> dict[str, bytes]:
    """The metadata entries of an XPAK binpkg's xpak segment."""
    import portage.xpak

    try:
        data = portage.xpak.tbz2(str(path)).get_data()
    except _portage_errors() as exc:
        raise BinpkgError(
            f"{path}: Portage cannot read the xpak segment: {_one_line(exc)}",
            hint="the file is truncated or corrupt; rebuild it or fetch it again",
        ) from exc
    if not data:
        raise BinpkgError(
            f"{path}: the xpak segment is empty or unreadable",
            hint="the file is truncated or corrupt; rebuild it or fetch it again",
        )
    out: dict[str, bytes] = {}
    for key, value in data.items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        out[name] = bytes(value)
    return out
