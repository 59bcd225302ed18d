"""The one place that calls Portage, and maps its errors to ``BinpkgError``.

Portage's readers want a ``config`` object. A real one is built once per
process from an empty private configuration root (no /etc/portage, no
repository of the host), which takes a few tens of milliseconds and works on
any machine that has the ``portage`` package, Gentoo or not.

Every function here calls :func:`quiet_identity` before importing Portage.
"""

from __future__ import annotations

import atexit
import functools
import grp
import os
import pwd
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ipfsbin.errors import BinpkgError

__all__ = [
    "XpakLayout",
    "gpkg_metadata",
    "quiet_identity",
    "reader_settings",
    "use_reduce_flat",
    "verify_gpkg",
    "xpak_layout",
    "xpak_metadata",
]

_REPO = "ipfsbin_reader"
_HINT_REJECTED = (
    "the file is truncated, corrupt or not a binary package; rebuild it or fetch it again"
)


@functools.cache
def quiet_identity() -> None:
    """Name the current user and group as Portage's on hosts that have no ``portage`` ones.

    Without that, Portage prints "'portage' user or group missing" and four
    warning lines to stderr the first time it looks its user up, which a
    command that only reads binpkgs must not show. Values already in the
    environment, and hosts with a real portage user and group, are left alone.
    """
    for variable, exists, current in (
        ("PORTAGE_USERNAME", _user_exists, _current_user),
        ("PORTAGE_GRPNAME", _group_exists, _current_group),
    ):
        if os.environ.get(variable) or exists("portage"):
            continue
        name = current()
        # A uid/gid with no name: Portage's warning is then the truth.
        if name is not None:
            os.environ[variable] = name


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _current_user() -> str | None:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None


def _current_group() -> str | None:
    try:
        return grp.getgrgid(os.getgid()).gr_name
    except KeyError:
        return None


@functools.cache
def reader_settings() -> Any:
    """A Portage ``config`` good for reading binpkgs; built once, never from the host's files."""
    quiet_identity()
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
    # Portage takes its user from the config it is given, not only from os.environ.
    for variable in ("PORTAGE_USERNAME", "PORTAGE_GRPNAME"):
        if os.environ.get(variable):
            env[variable] = os.environ[variable]
    return portage.config(
        config_root=root, target_root=root, eprefix=root, local_config=False, env=env
    )


def _portage_errors() -> tuple[type[BaseException], ...]:
    from portage.exception import PortageException

    return (PortageException, tarfile.TarError, OSError, EOFError, ValueError, KeyError)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _gpkg(path: Path) -> Any:
    settings = reader_settings()
    import portage.gpkg

    return portage.gpkg.gpkg(settings, None, str(path), verify_signature=False)


def gpkg_metadata(path: Path) -> dict[str, bytes]:
    """The metadata files of a GPKG, after Portage's check of the container and metadata part.

    Portage checks the container's layout (one directory, the gpkg-1 marker,
    no duplicate names), that every part is listed in the Manifest with its
    size, and the Manifest checksums of the metadata part. The image's
    checksums are :func:`verify_gpkg`'s job: they cost a read of the whole file.
    """
    pkg = _gpkg(path)
    try:
        metadata = pkg.get_metadata()
    except _portage_errors() as exc:
        raise BinpkgError(
            f"{path}: Portage rejects this gpkg: {_one_line(exc)}", hint=_HINT_REJECTED
        ) from exc
    if not isinstance(metadata, dict):
        raise BinpkgError(f"{path}: Portage found no metadata in this gpkg")
    return {str(k): bytes(v) for k, v in metadata.items()}


def verify_gpkg(path: Path) -> None:
    """Portage's check of every part of a GPKG (image included) against its Manifest."""
    pkg = _gpkg(path)
    try:
        pkg._verify_binpkg(metadata_only=False)
    except _portage_errors() as exc:
        raise BinpkgError(
            f"{path}: Portage rejects this gpkg: {_one_line(exc)}", hint=_HINT_REJECTED
        ) from exc


def use_reduce_flat(text: str, use: Iterable[str]) -> list[str]:
    """The tokens of a USE-conditional string (RESTRICT) under ``use``; Portage's errors pass."""
    quiet_identity()
    from portage.dep import use_reduce

    return list(use_reduce(text, uselist=frozenset(use), flat=True))


class XpakLayout:
    """Where the parts of an XPAK binpkg lie: the tar is the first ``tar_size`` bytes."""

    def __init__(self, tar_size: int) -> None:
        self.tar_size = tar_size


def xpak_layout(path: Path) -> XpakLayout | None:
    """The layout of an XPAK binpkg, or None when the file has no xpak segment."""
    quiet_identity()
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
    quiet_identity()
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
