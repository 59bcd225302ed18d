"""The on-disk key store and the key types: permissions, names, races, key IDs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ipfsbin.errors import KeyStoreError, SignatureError
from ipfsbin.trust.keys import KeyStore, PublicKey, SigningKey


def test_generated_key_is_private_to_its_owner_and_loads_back(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    key = store.generate("builder")
    path = tmp_path / "keys" / "builder.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert store.load("builder").key_id == key.key_id
    assert store.names() == ["builder"]
    assert key.key_id.startswith("k51") and "PRIVATE" not in repr(key)


def test_a_key_readable_by_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.generate("m")
    os.chmod(tmp_path / "m.pem", 0o644)
    with pytest.raises(KeyStoreError, match="readable by others") as caught:
        store.load("m")
    assert caught.value.hint is not None and "chmod 600" in caught.value.hint


def test_an_existing_name_is_never_overwritten(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    first = store.generate("m")
    with pytest.raises(KeyStoreError, match="already exists"):
        store.generate("m")
    with pytest.raises(KeyStoreError, match="already exists"):
        store.add("m", SigningKey.generate())
    assert store.load("m").key_id == first.key_id


def test_a_name_taken_while_writing_gives_a_clear_error_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KeyStore(tmp_path)
    real_link = os.link

    def another_process_wins(src: str, dst: Path) -> None:
        Path(dst).write_bytes(b"someone else's key")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", another_process_wins)
    with pytest.raises(KeyStoreError, match="already exists"):
        store.generate("m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pem"]
    assert (tmp_path / "m.pem").read_bytes() == b"someone else's key"


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 65, "spa ce"])
def test_names_that_could_escape_or_hide_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(KeyStoreError, match="invalid key name"):
        KeyStore(tmp_path).generate(name)


def test_missing_key_says_how_to_list_and_create(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="no key named") as caught:
        KeyStore(tmp_path).load("nope")
    assert caught.value.hint is not None and "ipfsbin key gen" in caught.value.hint


def test_signatures_are_bound_to_their_domain() -> None:
    key = SigningKey.from_seed(bytes(32))
    signature = key.sign(b"ipfsbin-commit-v1:", b"payload")
    key.public_key.verify(b"ipfsbin-commit-v1:", b"payload", signature)
    assert not key.public_key.check(b"ipfsbin-root-v1:", b"payload", signature)
    with pytest.raises(SignatureError, match="does not verify"):
        key.public_key.verify(b"ipfsbin-commit-v1:", b"payload!", signature)


def test_key_ids_round_trip_and_pem_is_what_kubo_imports() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    assert PublicKey.from_key_id(key.key_id) == key.public_key
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert SigningKey.from_pem(pem).key_id == key.key_id
    with pytest.raises(KeyStoreError, match="PKCS#8"):
        SigningKey.from_pem(b"not a key")
    with pytest.raises(SignatureError, match="not a key ID"):
        PublicKey.from_key_id("bafy-not-a-key")
