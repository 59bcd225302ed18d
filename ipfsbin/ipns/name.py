"""IPNS names: the public key of an ed25519 publisher, written as a libp2p-key CID.

The canonical form is base36 CIDv1 (``k51…``), what Kubo prints by default.
Readers also accept ``/ipns/``-prefixed names, other multibase forms of the
same CID and legacy base58 peer IDs (``12D3KooW…``), since users copy names
from many places. Only ed25519 keys (inlined with the identity multihash) are
supported: an RSA name does not carry its key, so a record could not be
checked without fetching the key from somewhere else.
"""

from __future__ import annotations

from multiformats import multibase

from ipfsbin.codec.cid import CID, LIBP2P_KEY
from ipfsbin.errors import CodecError, IpnsError, SignatureError
from ipfsbin.trust.keys import PublicKey

__all__ = ["canonical_name", "ipns_path", "public_key_from_name"]

_PREFIX = "/ipns/"
_HINT = "an IPNS name looks like k51qzi5uqu5d… (run `ipfs key list -l` to see yours)"


def _name_cid(name: str) -> CID:
    text = name.strip()
    if text.startswith(_PREFIX):
        text = text[len(_PREFIX) :]
    if not text:
        raise IpnsError("empty IPNS name", hint=_HINT)
    try:
        if text.startswith(("1", "Qm")):
            # a legacy peer ID: a bare base58btc multihash without multibase prefix
            return CID.v1(LIBP2P_KEY, multibase.decode("z" + text))
        return CID.from_text(text)
    except (CodecError, ValueError, KeyError) as exc:
        raise IpnsError(f"not an IPNS name: {name!r}", hint=_HINT) from exc


def public_key_from_name(name: str) -> PublicKey:
    """The ed25519 key inlined in ``name``; raise :class:`IpnsError` for anything else."""
    cid = _name_cid(name)
    if cid.version != 1 or cid.codec != LIBP2P_KEY:
        raise IpnsError(
            f"{name!r} is a {cid.codec_name} CID, not an IPNS name (libp2p-key)", hint=_HINT
        )
    try:
        return PublicKey.from_key_id(cid.encode("base36"))
    except (SignatureError, CodecError) as exc:
        raise IpnsError(
            f"IPNS name {name!r} does not inline an ed25519 public key ({exc})",
            hint="only ed25519 names (k51…) are supported",
        ) from exc


def canonical_name(name: str) -> str:
    """``name`` in the canonical base36 form ``k51…``."""
    return public_key_from_name(name).key_id


def ipns_path(name: str) -> str:
    """``/ipns/k51…``, the routing key Kubo takes for ``routing/put`` and ``routing/get``."""
    return _PREFIX + canonical_name(name)
