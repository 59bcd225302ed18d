"""The one place that calls Portage, and maps its errors to ``BinpkgError``.

Portage's readers want a ``config`` object. A real one is built once per
process from an empty private configuration root (no /etc/portage, no
repository of the host), which takes a few tens of milliseconds and works on
any machine that has the ``portage`` package, Gentoo or not.

Every function here calls :func:`quiet_identity` before importing Portage,
and :func:`reader_settings` silences Portage for the whole process: its
messages (coloured, on stderr, without a final newline at times) never reach
the user; what went wrong comes back as a ``BinpkgError`` instead.

Signatures: a GPKG that carries one is checked by Portage, exactly as
``emerge`` would, against the keyring :func:`verify_keyring` names; a GPKG
without one is read as it is (see ``schema/manifest.md`` §1.3).
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

from ipfsbin.binpkg._signatures import (
    KEYRING_VARIABLE,
    gpkg_signed,
    signature_problem,
    verify_keyring,
)
from ipfsbin.errors import BinpkgError

__all__ = [
    "XpakLayout",
    "cpv_key",
    "decompress_command",
    "gpkg_compression",
    "gpkg_metadata",
    "gpkg_part",
    "quiet_identity",
    "reader_settings",
    "use_reduce_flat",
    "verify_gpkg",
    "xpak_compression",
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
def _silence_portage() -> None:
    """Portage writes to stderr itself (gpg verdicts, decompressor failures, in colour).

    ``writemsg`` prints what is at or below ``noiselimit``; the lowest level
    Portage ever uses is -1, so -2 silences all of it in this process.
    """
    import portage.output
    import portage.util

    portage.util.noiselimit = -2
    portage.output.nocolor()


def reader_settings(keyring: Path | None = None) -> Any:
    """A Portage ``config`` good for reading binpkgs, never from the host's files.

    Built once per keyring (``keyring`` defaults to :func:`verify_keyring`).
    """
    quiet_identity()  # before verify_keyring, which may import Portage to read make.conf
    return _reader_settings(str(keyring if keyring is not None else verify_keyring()))


@functools.cache
def _reader_settings(keyring: str) -> Any:
    quiet_identity()
    import portage

    _silence_portage()
    root = tempfile.mkdtemp(prefix="ipfsbin-portage-")
    atexit.register(shutil.rmtree, root, True)
    repo = Path(root, "repo")
    (repo / "profiles").mkdir(parents=True)
    (repo / "profiles" / "repo_name").write_text(f"{_REPO}\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PORTAGE_REPOSITORIES": f"[DEFAULT]\nmain-repo = {_REPO}\n[{_REPO}]\nlocation = {repo}\n",
        # Neither binpkg-ignore-signature nor binpkg-request-signature: Portage
        # then verifies a signature whenever a gpkg carries one, and does not
        # ask for one that is absent.
        "FEATURES": "",
        KEYRING_VARIABLE: keyring,
        # gpg runs as this user, with the keyring's owner's rights.
        "GPG_VERIFY_USER_DROP": "",
        "GPG_VERIFY_GROUP_DROP": "",
        # A part named without a compression suffix (metadata.tar) is read as
        # it is; Portage would otherwise run BINPKG_COMPRESS's program on it.
        "BINPKG_COMPRESS": "none",
        "NO_COLOR": "1",
    }
    # Portage takes its user from the config it is given, not only from os.environ.
    for variable in ("PORTAGE_USERNAME", "PORTAGE_GRPNAME"):
        if os.environ.get(variable):
            env[variable] = os.environ[variable]
    settings = portage.config(
        config_root=root, target_root=root, eprefix=root, local_config=False, env=env
    )
    # Portage's checksum helper asks for the whole environment once per gpkg part it
    # reads (about 1 ms each, for the gpg command it may run); nothing changes these
    # settings after this, so it is built once and each caller gets its own copy.
    environment = settings.environ()
    settings.environ = lambda: dict(environment)
    return settings


def _portage_errors() -> tuple[type[BaseException], ...]:
    from portage.exception import PortageException

    return (PortageException, tarfile.TarError, OSError, EOFError, ValueError, KeyError)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _gpkg(path: Path | None) -> Any:
    settings = reader_settings()
    import portage.gpkg

    # verify_signature=None: Portage's own rule, from FEATURES (see reader_settings).
    return portage.gpkg.gpkg(settings, None, None if path is None else str(path))


def _signature_errors() -> tuple[type[BaseException], ...]:
    # Not DigestException: Portage files it under signatures too, but it is a checksum.
    from portage.exception import (
        GPGException,
        InvalidSignature,
        MissingSignature,
        UntrustedSignature,
    )

    return (GPGException, InvalidSignature, MissingSignature, UntrustedSignature)


def _rejected(path: Path, exc: BaseException) -> BinpkgError:
    # A missing Manifest is a MissingSignature to Portage: only a signed gpkg has one to fail.
    if isinstance(exc, _signature_errors()) and gpkg_signed(path):
        keyring = verify_keyring()
        return BinpkgError(
            f"{path}: the gpkg's signature does not verify against the keyring in {keyring}: "
            f"{signature_problem(path, keyring)}",
            hint=f"do not publish it; if its signer is trusted, add the key to {keyring} "
            f"(getuto does for Gentoo's keys) or point {KEYRING_VARIABLE} at your keyring",
        )
    return BinpkgError(f"{path}: Portage rejects this gpkg: {_one_line(exc)}", hint=_HINT_REJECTED)


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
        raise _rejected(path, exc) from exc
    if not isinstance(metadata, dict):
        raise BinpkgError(f"{path}: Portage found no metadata in this gpkg")
    return {str(k): bytes(v) for k, v in metadata.items()}


def verify_gpkg(path: Path, *, image: bool = True) -> None:
    """Portage's check of every part of a GPKG (image included) against its Manifest.

    With ``image`` False, Portage's ``metadata_only`` check: the container, the
    Manifest and its signature, every part's size, and every part but the
    image by its digests.
    """
    pkg = _gpkg(path)
    try:
        pkg._verify_binpkg(metadata_only=not image)
    except _portage_errors() as exc:
        raise _rejected(path, exc) from exc


def cpv_key(cpv: str) -> str:
    """Category and name of a CPV (``app-misc/hello-1-r1`` gives ``app-misc/hello``)."""
    quiet_identity()
    from portage.versions import cpv_getkey

    try:
        return str(cpv_getkey(cpv) or cpv)
    except _portage_errors():
        return cpv


@functools.cache
def _names() -> Any:
    """A gpkg reader for its file-name rules only (building one per name costs milliseconds)."""
    return _gpkg(None)


def gpkg_part(member_name: str) -> tuple[str, str | None] | None:
    """A GPKG member's part name and compression as Portage parses it, or None if it does not.

    ``x/metadata.tar.zst`` gives ``("metadata", "zstd")``, ``x/image.tar`` ``("image", None)``.
    """
    try:
        name, compression = _names()._extract_filename_compression(member_name)
    except _portage_errors():
        return None
    return str(name), None if compression is None else str(compression)


def gpkg_compression(part_name: str) -> str | None:
    """The compression Portage reads a GPKG part with (``image.tar.zst`` gives ``zstd``)."""
    part = gpkg_part(part_name)
    return None if part is None else part[1]


def xpak_compression(path: Path) -> str | None:
    """The compression of an XPAK binpkg's tar, by Portage's magic-number probe."""
    quiet_identity()
    from portage.util.compression_probe import compression_probe

    try:
        return compression_probe(str(path))  # type: ignore[no-any-return]
    except _portage_errors():
        return None


def decompress_command(compression: str, what: str) -> list[str]:
    """Portage's own decompressor command for ``compression`` (``zstd -d --long=31``...).

    Taken from Portage's table (``portage.util.compression_probe._compressors``)
    through the same expansion Portage applies; raises ``BinpkgError`` when the
    program is missing or the compression unknown.
    """
    from portage.exception import CompressorNotFound, InvalidCompressionMethod

    try:
        return list(_gpkg(None)._get_decompression_cmd(compression))
    except CompressorNotFound as exc:
        raise BinpkgError(
            f"{what}: needs {_one_line(exc)} to decompress its {compression} image, "
            "and it is not on PATH",
            hint=f"install the {compression} program",
        ) from exc
    except InvalidCompressionMethod as exc:
        raise BinpkgError(
            f"{what}: unknown image compression {compression!r}", hint=_HINT_REJECTED
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
