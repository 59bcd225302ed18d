"""Swarm keys and the config of a private node."""

from __future__ import annotations

import pytest

from ipfsbin.errors import NodeError
from ipfsbin.kubo.private import (
    new_swarm_key,
    parse_swarm_key,
    private_config,
    swarm_key_sha256,
)

HEX = "0123456789abcdef" * 4


def test_a_new_key_is_in_kubo_format_and_fresh() -> None:
    key = new_swarm_key()
    assert key.startswith(b"/key/swarm/psk/1.0.0/\n/base16/\n") and len(key) == 31 + 64 + 1
    assert parse_swarm_key(key) == key
    assert new_swarm_key() != key


def test_a_key_is_normalized_and_its_digest_hides_it() -> None:
    written = f"/key/swarm/psk/1.0.0/\r\n/base16/\r\n{HEX.upper()}".encode()
    normal = parse_swarm_key(written)
    assert normal == f"/key/swarm/psk/1.0.0/\n/base16/\n{HEX}\n".encode()
    digest = swarm_key_sha256(written)
    assert digest == swarm_key_sha256(normal) and HEX[:16] not in digest


@pytest.mark.parametrize(
    "data",
    [
        b"",
        HEX.encode(),
        f"/key/swarm/psk/1.0.0/\n/base64/\n{HEX}\n".encode(),
        f"/key/swarm/psk/1.0.0/\n/base16/\n{HEX[:-2]}\n".encode(),
        b"\xff" * 96,
    ],
)
def test_anything_else_is_refused_with_a_hint(data: bytes) -> None:
    with pytest.raises(NodeError, match="keyfile is not a libp2p swarm key") as caught:
        parse_swarm_key(data, "keyfile")
    assert caught.value.hint is not None and "init-private" in caught.value.hint


def test_a_private_node_reaches_nothing_public() -> None:
    peer = "/ip4/10.0.0.5/tcp/4001/p2p/12D3KooWQKH2PQJsKJF6VDYaFGgH3pP8KSMVGKRH6LfFqQHvYx6z"
    config = private_config([peer])
    assert config["Bootstrap"] == [peer] and config["Routing.Type"] == "dht"
    assert config["AutoConf.Enabled"] is False and config["AutoTLS.Enabled"] is False
    assert config["Routing.DelegatedRouters"] == [] and config["DNS.Resolvers"] == {}
    with pytest.raises(NodeError, match="not a multiaddr with a peer ID"):
        private_config(["/ip4/10.0.0.5/tcp/4001"])
