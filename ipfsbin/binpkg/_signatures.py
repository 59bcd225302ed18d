"""Which keyring a signed binpkg must verify against, and what gpg says when it does not.

Portage itself verifies the signatures (see :mod:`ipfsbin.binpkg._portage`);
this module names the keyring the way Portage finds it, tells whether a GPKG
is signed at all, and turns a failed verification into a few words.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from ipfsbin.binpkg import _ustar

__all__ = [
    "DEFAULT_KEYRING",
    "KEYRING_VARIABLE",
    "gpkg_signed",
    "signature_problem",
    "verify_keyring",
]

# Portage's default keyring for binpkg signatures (make.globals), filled by getuto.
DEFAULT_KEYRING = "/etc/portage/gnupg"
KEYRING_VARIABLE = "BINPKG_GPG_VERIFY_GPG_HOME"
_PGP = b"-----BEGIN PGP SIGNATURE-----"


def verify_keyring() -> Path:
    """The GnuPG home whose keys a signed binpkg must verify against: the builder's own.

    The same setting Portage uses to verify binpkgs: ``BINPKG_GPG_VERIFY_GPG_HOME``
    from the environment, else from ``$PORTAGE_CONFIGROOT/etc/portage/make.conf``,
    else Portage's default ``/etc/portage/gnupg`` (the keyring ``getuto`` keeps).
    """
    value = os.environ.get(KEYRING_VARIABLE, "")
    if not value:
        value = _make_conf_value(KEYRING_VARIABLE)
    return Path(value or DEFAULT_KEYRING)


def _make_conf_value(name: str) -> str:
    root = Path(os.environ.get("PORTAGE_CONFIGROOT") or "/")
    make_conf = root / "etc" / "portage" / "make.conf"
    if not make_conf.is_file():
        return ""
    from portage.util import getconfig

    try:
        values = getconfig(str(make_conf), tolerant=True, expand=True) or {}
    except Exception:  # noqa: BLE001 - an unreadable make.conf names no keyring
        return ""
    return str(values.get(name, ""))


def gpkg_signed(path: Path) -> bool:
    """True when the GPKG carries a signature: a ``.sig`` part or a signed Manifest (as Portage)."""
    try:
        with path.open("rb") as raw:
            listed = _ustar.list_file(raw, os.fstat(raw.fileno()).st_size, 64)
            if listed is not None:
                for part in listed:
                    name = part.name.rpartition("/")[2]
                    if name.endswith(".sig"):
                        return True
                    if name == "Manifest" and part.is_file:
                        raw.seek(part.offset)
                        if _PGP in raw.read(min(part.size, 1 << 20)):
                            return True
                return False
    except OSError:
        return False
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar.getmembers():
                base = member.name.rpartition("/")[2]
                if base.endswith(".sig"):
                    return True
                if base == "Manifest":
                    handle = tar.extractfile(member)
                    if handle is not None and _PGP in handle.read(1 << 20):
                        return True
    except (tarfile.TarError, OSError):
        return False
    return False


def signature_problem(path: Path, keyring: Path) -> str:
    """What gpg says of the gpkg's clear-signed Manifest, in a few words."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            member = next(
                (m for m in tar.getmembers() if m.name.rpartition("/")[2] == "Manifest"), None
            )
            handle = None if member is None else tar.extractfile(member)
            manifest = b"" if handle is None else handle.read(1 << 20)
    except (tarfile.TarError, OSError):
        return "the container cannot be read"
    gpg = shutil.which("gpg")
    if gpg is None:
        return "gpg is not installed"
    try:
        proc = subprocess.run(  # noqa: S603 - fixed program, no shell
            [
                gpg,
                "--homedir",
                str(keyring),
                "--batch",
                "--no-tty",
                "--status-fd",
                "1",
                "--no-auto-check-trustdb",
                "--verify",
            ],
            input=manifest,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"gpg could not run ({exc})"
    status = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "[GNUPG:]":
            status[words[1]] = words[2:]
    if "BADSIG" in status:
        return "the signed Manifest was changed after signing (BADSIG)"
    if "NO_PUBKEY" in status:
        key = status["NO_PUBKEY"][0] if status["NO_PUBKEY"] else "?"
        return f"signed by key {key}, which is not in the keyring"
    for word, what in (
        ("EXPKEYSIG", "signed by an expired key"),
        ("REVKEYSIG", "signed by a revoked key"),
        ("EXPSIG", "the signature has expired"),
    ):
        if word in status:
            return what
    if "GOODSIG" in status and not {"TRUST_FULLY", "TRUST_ULTIMATE"} & set(status):
        key = status["GOODSIG"][0] if status["GOODSIG"] else "?"
        return f"signed by key {key}, which the keyring does not trust (Portage wants it lsigned)"
    if "GOODSIG" in status:
        return "a part's detached signature (.sig) does not verify or is missing"
    if "NODATA" in status:
        return "the Manifest carries no readable signature"
    return "gpg found no good signature"
