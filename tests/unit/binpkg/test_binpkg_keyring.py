"""Which keyring a signed binpkg is verified against: the one Portage would use."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipfsbin.binpkg._signatures import DEFAULT_KEYRING, gpkg_signed, verify_keyring


def test_keyring_from_environment_then_make_conf_then_portage_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BINPKG_GPG_VERIFY_GPG_HOME", raising=False)
    monkeypatch.setenv("PORTAGE_CONFIGROOT", str(tmp_path))
    assert verify_keyring() == Path(DEFAULT_KEYRING) == Path("/etc/portage/gnupg")
    conf = tmp_path / "etc" / "portage" / "make.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text('KEYS="/srv/keys"\nBINPKG_GPG_VERIFY_GPG_HOME="${KEYS}/gnupg"\n')
    assert verify_keyring() == Path("/srv/keys/gnupg")
    monkeypatch.setenv("BINPKG_GPG_VERIFY_GPG_HOME", "/home/builder/.gnupg")
    assert verify_keyring() == Path("/home/builder/.gnupg")


def test_a_file_that_is_no_tar_is_not_signed(tmp_path: Path) -> None:
    path = tmp_path / "x.gpkg.tar"
    path.write_bytes(b"-----BEGIN PGP SIGNATURE-----")
    assert not gpkg_signed(path)
