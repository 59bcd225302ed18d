"""IPNS names in the forms users paste."""

from __future__ import annotations

import pytest
from multiformats import multibase

from ipfsbin.codec.cid import RAW, cid_for
from ipfsbin.errors import IpnsError
from ipfsbin.ipns import canonical_name, ipns_path, public_key_from_name
from ipfsbin.trust.keys import SigningKey

KEY = SigningKey.from_seed(bytes(range(32)))


def test_forms_of_one_name() -> None:
    peer_id = multibase.encode(KEY.public_key.key_cid.multihash, "base58btc")[1:]
    assert peer_id.startswith("12D3KooW")
    forms = [
        KEY.key_id,
        f"/ipns/{KEY.key_id}",
        KEY.public_key.key_cid.encode("base32"),
        peer_id,
        f"/ipns/{peer_id}",
    ]
    for form in forms:
        assert public_key_from_name(form) == KEY.public_key
        assert canonical_name(form) == KEY.key_id
    assert ipns_path(peer_id) == f"/ipns/{KEY.key_id}"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty IPNS name"),
        ("/ipns/", "empty IPNS name"),
        ("k51-nonsense", "not an IPNS name"),
        (str(cid_for(RAW, b"x")), "is a raw CID, not an IPNS name"),
        # an RSA-era name: a sha2-256 hash of the key, which the name does not carry
        ("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "does not inline an ed25519"),
    ],
)
def test_bad_names(name: str, fragment: str) -> None:
    with pytest.raises(IpnsError, match=fragment) as caught:
        public_key_from_name(name)
    assert caught.value.hint is not None
