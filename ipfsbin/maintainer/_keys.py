"""Key IDs a maintainer gives on the command line: one check, one message."""

from __future__ import annotations

from ipfsbin.errors import IndexOperationError, SchemaError
from ipfsbin.trust.keys import PublicKey
from ipfsbin.trust.signing import public_key_of

__all__ = ["maintainer_key"]


def maintainer_key(key_id: str) -> PublicKey:
    """The public key ``key_id`` names; ``IndexOperationError`` with a hint if it names none."""
    try:
        return public_key_of(key_id)
    except SchemaError as exc:
        raise IndexOperationError(
            f"{key_id!r} is not a key ID: {exc.message}",
            hint="key IDs look like k51qzi5uqu5d…; `ipfsbin key list` shows yours",
        ) from exc
