"""Signed gpkgs made by Portage's own ``gpkg-sign`` with a throwaway GnuPG home.

:func:`make_keyring` creates a GnuPG home holding one fresh ed25519 signing
key without a passphrase (ultimately trusted there, as a key of one's own
is, which is the trust Portage's verification asks for). :func:`sign_gpkg`
runs the real ``gpkg-sign`` of the playground on a copy of a gpkg.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from portage.const import PORTAGE_BIN_PATH

from tests.playground.builder import BuilderPlayground
from tests.playground.portage_env import EmergeError

__all__ = ["gpg_available", "keyring", "make_keyring", "sign_gpkg"]


def gpg_available() -> bool:
    return shutil.which("gpg") is not None and shutil.which("flock") is not None


def make_keyring(home: Path, name: str = "ipfsbin test builder") -> str:
    """Create ``home`` with one signing key; returns the key's fingerprint."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--passphrase", "", "--quick-gen-key",
         f"{name} <builder@ipfsbin.invalid>", "ed25519", "sign", "never"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    out = subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--with-colons", "--list-secret-keys"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


@contextmanager
def keyring(home: Path, name: str = "ipfsbin test builder") -> Iterator[str]:
    """:func:`make_keyring`, and stop the gpg-agent gpg started for it afterwards."""
    try:
        yield make_keyring(home, name)
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            check=False, capture_output=True, timeout=60,
        )  # fmt: skip


def sign_gpkg(builder: BuilderPlayground, src: Path, dst: Path, home: Path, key: str) -> Path:
    """Copy ``src`` to ``dst`` and sign the copy with the real ``gpkg-sign``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    lock_dir = Path("/run/lock")
    lock_dir.mkdir(parents=True, exist_ok=True)
    env = builder.env(
        {
            "BINPKG_GPG_SIGNING_GPG_HOME": str(home),
            "BINPKG_GPG_SIGNING_KEY": key,
            "BINPKG_GPG_SIGNING_BASE_COMMAND": (
                f"{shutil.which('flock')} {lock_dir}/ipfsbin-test-gpg.lock "
                f"{shutil.which('gpg')} --sign --armor [PORTAGE_CONFIG]"
            ),
            "FEATURES": "binpkg-signing -binpkg-request-signature",
            "BINPKG_GPG_VERIFY_GPG_HOME": str(home),
            "GPG_VERIFY_USER_DROP": "",
            "GPG_VERIFY_GROUP_DROP": "",
        }
    )
    cmd = [sys.executable, "-b", os.path.join(PORTAGE_BIN_PATH, "gpkg-sign"), str(dst)]
    proc = subprocess.run(  # noqa: S603 - fixed interpreter and script
        cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise EmergeError(f"gpkg-sign exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return dst
