"""Private swarms: a Kubo repo that talks only to peers holding the same swarm key.

libp2p's private networks (PSK) encrypt every connection with a pre-shared
key, so a peer without ``swarm.key`` cannot even complete a handshake, let
alone fetch a block. A repo made private here also gets the marker file
:data:`PRIVATE_MARKER`: :class:`~ipfsbin.kubo.node.ManagedNode` then starts
its daemon with ``LIBP2P_FORCE_PNET=1``, so a lost or deleted key stops the
daemon from starting instead of letting it join the public network.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from ipfsbin.errors import NodeError

__all__ = [
    "PRIVATE_CONFIG",
    "PRIVATE_MARKER",
    "SWARM_KEY_FILE",
    "is_private",
    "new_swarm_key",
    "parse_swarm_key",
    "private_config",
    "swarm_key_sha256",
    "write_private",
]

SWARM_KEY_FILE: Final = "swarm.key"
PRIVATE_MARKER: Final = "ipfsbin-private"
_HEADER: Final = "/key/swarm/psk/1.0.0/\n/base16/\n"
_KEY_RE: Final = re.compile(r"/key/swarm/psk/1\.0\.0/\n/base16/\n([0-9a-fA-F]{64})\n?")

# Nothing that reaches outside the organisation: no public bootstrap peers,
# no AutoConf (it fetches the public bootstrap list, HTTP routers, DNS
# resolvers and IPNS publishers; their "auto" values are emptied with it),
# no AutoTLS (a public certificate service), DHT routing only (the default
# "auto" also asks public HTTP routers, which would leak every CID). Only TCP
# carries a pre-shared key, and the WebSocket transport cannot share its port.
PRIVATE_CONFIG: Final[Mapping[str, Any]] = {
    "AutoConf.Enabled": False,
    "AutoTLS.Enabled": False,
    "DNS.Resolvers": {},
    "Ipns.DelegatedPublishers": [],
    "Routing.DelegatedRouters": [],
    "Routing.Type": "dht",
    "Swarm.Transports.Network.Websocket": False,
}


def new_swarm_key() -> bytes:
    """A fresh 256-bit swarm key in the file format Kubo reads."""
    return (_HEADER + secrets.token_hex(32) + "\n").encode()


def parse_swarm_key(data: bytes, where: str = "swarm key") -> bytes:
    """The key file ``data`` normalized, or a ``NodeError`` saying what is wrong with it."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    found = _KEY_RE.fullmatch(text.replace("\r\n", "\n"))
    if found is None:
        raise NodeError(
            f"{where} is not a libp2p swarm key",
            hint="a swarm key is three lines: /key/swarm/psk/1.0.0/, /base16/, "
            "then 64 hex digits; `ipfsbin init-private` makes one",
        )
    return (_HEADER + found.group(1).lower() + "\n").encode()


def swarm_key_sha256(key: bytes) -> str:
    """The first 16 hex digits of the key file's SHA-256: compares keys without showing them.

    (Kubo logs a "Swarm key fingerprint" of its own, computed differently.)
    """
    return hashlib.sha256(parse_swarm_key(key)).hexdigest()[:16]


def private_config(bootstrap: Sequence[str]) -> dict[str, Any]:
    """The Kubo config keys (dotted) of a private node that bootstraps from ``bootstrap``."""
    for addr in bootstrap:
        if not addr.startswith("/") or "/p2p/" not in addr:
            raise NodeError(
                f"bootstrap address {addr!r} is not a multiaddr with a peer ID",
                hint="give the full address, e.g. /ip4/10.0.0.5/tcp/4001/p2p/12D3Koo…",
            )
    return {**PRIVATE_CONFIG, "Bootstrap": list(bootstrap)}


def is_private(repo: Path) -> bool:
    """Whether the repo was made private (its daemon must refuse to start without the key)."""
    return (repo / PRIVATE_MARKER).is_file()


def write_private(repo: Path, key: bytes) -> None:
    """Put ``key`` into an initialized repo and mark the repo private.

    The Kubo config is the caller's (``ipfs config`` through the node), since
    it must go through the ``ipfs`` command to stay valid.
    """
    if not (repo / "config").is_file():
        raise NodeError(f"{repo} is not an initialized Kubo repo")
    target = repo / SWARM_KEY_FILE
    target.write_bytes(parse_swarm_key(key))
    target.chmod(0o600)
    (repo / PRIVATE_MARKER).write_text(json.dumps({"swarm_key": swarm_key_sha256(key)}) + "\n")
