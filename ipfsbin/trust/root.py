"""Trust roots: the keys and role thresholds everything else is verified against.

A root is the payload of a signed envelope (``ipfsbin.trust.signing``);
its identity (the *root ID*) is the CID of the payload block. Version ``n+1``
links version ``n`` by that ID in ``previous`` and must be signed by a
threshold of version ``n``'s maintainers and of its own (checked in
``ipfsbin.trust.state``). The wire format is specified in ``schema/trust.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ipfsbin.codec.cid import CID
from ipfsbin.codec.dagcbor import Value
from ipfsbin.codec.fields import (
    expect_fields,
    expect_type,
    get_bytes,
    get_cid,
    get_int,
    get_map,
    get_str,
)
from ipfsbin.errors import SchemaError
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.keys import PublicKey, SigningKey
from ipfsbin.trust.signing import (
    Payload,
    Role,
    Signed,
    load_signed_blocks,
    public_key_of,
    put_signed,
)

__all__ = [
    "ROLE_NAMES",
    "ROOT_DOMAIN",
    "ROOT_TYPE",
    "Root",
    "SignedRoot",
    "load_root",
    "make_root",
    "put_root",
    "sign_root",
]

ROOT_TYPE = "ipfsbin/root/1"
ROOT_DOMAIN = b"ipfsbin-root-v1:"
ROLE_NAMES = ("maintainers", "publishers", "builders")

_REQUIRED = frozenset({"type", "version", "expires", "keys", "roles"})
_OPTIONAL = frozenset({"previous"})


@dataclass(frozen=True, kw_only=True)
class Root(Payload):
    """The signed part of a trust root. ``expires`` is Unix seconds (UTC)."""

    TYPE: ClassVar[str] = ROOT_TYPE
    DOMAIN: ClassVar[bytes] = ROOT_DOMAIN
    KIND: ClassVar[str] = "trust root"

    version: int
    expires: int
    previous: CID | None
    keys: Mapping[str, PublicKey] = field(repr=False)
    maintainers: Role
    publishers: Role
    builders: Role

    def __post_init__(self) -> None:
        if type(self.version) is not int or self.version < 1:
            raise SchemaError(f"trust root version must be an integer >= 1, got {self.version!r}")
        if type(self.expires) is not int or self.expires < 0:
            raise SchemaError(f"trust root expires must be Unix seconds, got {self.expires!r}")
        if self.version == 1 and self.previous is not None:
            raise SchemaError("trust root version 1 has no previous root, but one is linked")
        if self.version > 1 and self.previous is None:
            raise SchemaError(
                f"trust root version {self.version} must link version {self.version - 1} "
                "in previous"
            )
        for key_id, key in self.keys.items():
            if public_key_of(key_id) != key:
                raise SchemaError(f"keys: {key_id} maps to a different public key ({key})")
        used: set[str] = set()
        for name in ROLE_NAMES:
            role = self.role(name)
            if role.name != name:
                raise SchemaError(f"role {role.name!r} given as {name}")
            for key_id in role.keys:
                if key_id not in self.keys:
                    raise SchemaError(f"role {name} lists {key_id}, which is not in keys")
            used.update(role.keys)
        unused = sorted(self.keys.keys() - used)
        if unused:
            raise SchemaError(f"keys lists {', '.join(unused)}, which no role uses")

    def role(self, name: str) -> Role:
        if name not in ROLE_NAMES:
            raise ValueError(f"unknown role {name!r}; roles are {', '.join(ROLE_NAMES)}")
        role: Role = getattr(self, name)
        return role

    @classmethod
    def from_dag(cls, value: Value) -> Root:
        expect_type(value, "trust root", ROOT_TYPE)
        fields = expect_fields(value, "trust root", _REQUIRED, _OPTIONAL)
        keys = {
            get_str(k, "trust root key ID"): _public_key(get_bytes(v, f"public key of {k}"))
            for k, v in get_map(fields["keys"], "trust root keys").items()
        }
        roles = expect_fields(fields["roles"], "trust root roles", frozenset(ROLE_NAMES))
        previous = fields.get("previous")
        return cls(
            version=get_int(fields["version"], "trust root version", minimum=1),
            expires=get_int(fields["expires"], "trust root expires"),
            previous=None if previous is None else get_cid(previous, "previous", dag_cbor=True),
            keys=keys,
            maintainers=Role.from_dag("maintainers", roles["maintainers"]),
            publishers=Role.from_dag("publishers", roles["publishers"]),
            builders=Role.from_dag("builders", roles["builders"]),
        )

    def to_dag(self) -> dict[str, Value]:
        value: dict[str, Value] = {
            "type": ROOT_TYPE,
            "version": self.version,
            "expires": self.expires,
            "keys": {k: v.raw for k, v in self.keys.items()},
            "roles": {name: self.role(name).to_dag() for name in ROLE_NAMES},
        }
        if self.previous is not None:
            value["previous"] = self.previous
        return value


def _public_key(raw: bytes) -> PublicKey:
    if len(raw) != 32:
        raise SchemaError(f"an ed25519 public key has 32 bytes, got {len(raw)}")
    return PublicKey(raw=raw)


class SignedRoot(Signed[Root]):
    """A trust root with its signatures; ``root_id`` is its identity."""

    @classmethod
    def payload_from_dag(cls, value: Value) -> Root:
        return Root.from_dag(value)

    @classmethod
    def domain(cls) -> bytes:
        return ROOT_DOMAIN

    @property
    def root(self) -> Root:
        return self.payload

    @property
    def root_id(self) -> CID:
        return self.payload_id

    @property
    def version(self) -> int:
        return self.payload.version


def make_root(
    *,
    expires: int,
    maintainers: Iterable[PublicKey],
    maintainers_threshold: int = 1,
    publishers: Iterable[PublicKey] | None = None,
    publishers_threshold: int = 1,
    builders: Iterable[PublicKey] | None = None,
    builders_threshold: int = 1,
    previous: SignedRoot | None = None,
) -> Root:
    """A new root: version 1, or ``previous.version + 1`` linking ``previous``.

    Publishers and builders default to the maintainers' keys. A key left out
    of a role that ``previous`` had is revoked for that role from this version on.
    """
    maintainer_keys = list(maintainers)
    publisher_keys = maintainer_keys if publishers is None else list(publishers)
    builder_keys = maintainer_keys if builders is None else list(builders)
    all_keys = {k.key_id: k for k in (*maintainer_keys, *publisher_keys, *builder_keys)}
    return Root(
        version=1 if previous is None else previous.version + 1,
        expires=expires,
        previous=None if previous is None else previous.root_id,
        keys=dict(sorted(all_keys.items())),
        maintainers=Role.of("maintainers", maintainer_keys, maintainers_threshold),
        publishers=Role.of("publishers", publisher_keys, publishers_threshold),
        builders=Role.of("builders", builder_keys, builders_threshold),
    )


def sign_root(root: Root | SignedRoot, *keys: SigningKey) -> SignedRoot:
    """``root`` signed (or co-signed) by each of ``keys``.

    Signing does not check that a key belongs to the root: a rotation is
    signed by the old maintainers too, and verification decides what counts.
    """
    signed = root if isinstance(root, SignedRoot) else SignedRoot.create(root)
    for key in keys:
        signed = signed.with_signature(key)
    return signed


def put_root(store: BlockStore, signed: SignedRoot) -> CID:
    """Store the envelope and payload blocks; returns the envelope CID."""
    return put_signed(store, signed)


def load_root(store: BlockStore, cid: CID) -> SignedRoot:
    """Load a signed root by its envelope CID (signatures not yet checked)."""
    envelope, payload = load_signed_blocks(store, cid)
    return SignedRoot.from_blocks(envelope, payload, cid=cid)
