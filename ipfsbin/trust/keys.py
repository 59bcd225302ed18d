"""Ed25519 keys, domain-separated signatures, key IDs and the on-disk key store.

A key's ID is the libp2p form of its public key: the CIDv1 (codec
libp2p-key) of the identity multihash of the protobuf public key
``08 01 12 20 <32 bytes>``, written in base36 (``k51…``). So a publisher's key
ID is also its IPNS name.

Every signature covers ``domain + payload`` where the domain names the kind of
statement (``"ipfsbin-commit-v1:"``, ``"ipns-signature:"`` …), so a signature
made for one kind of object can never be replayed as another.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ipfsbin.codec.cid import CID, IDENTITY, LIBP2P_KEY
from ipfsbin.errors import KeyStoreError, SignatureError

__all__ = ["KeyStore", "PublicKey", "SigningKey"]

_PROTOBUF_ED25519_PREFIX = bytes([0x08, 0x01, 0x12, 0x20])
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class PublicKey:
    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise SignatureError(f"an ed25519 public key has 32 bytes, got {len(self.raw)}")

    @classmethod
    def from_protobuf(cls, data: bytes) -> PublicKey:
        if len(data) != 36 or not data.startswith(_PROTOBUF_ED25519_PREFIX):
            raise SignatureError(
                "not a libp2p ed25519 public key (expected 08 01 12 20 + 32 bytes)"
            )
        return cls(raw=data[4:])

    @classmethod
    def from_key_id(cls, key_id: str) -> PublicKey:
        """Parse a ``k51…`` key ID (or any multibase form of the libp2p-key CID)."""
        try:
            cid = CID.from_text(key_id)
        except Exception as exc:
            raise SignatureError(f"not a key ID: {key_id!r}") from exc
        if cid.version != 1 or cid.codec != LIBP2P_KEY or cid.hash_code != IDENTITY:
            raise SignatureError(f"{key_id} is not a libp2p-key CID with an identity multihash")
        return cls.from_protobuf(cid.digest)

    @property
    def protobuf(self) -> bytes:
        return _PROTOBUF_ED25519_PREFIX + self.raw

    @property
    def key_cid(self) -> CID:
        return CID.v1(LIBP2P_KEY, bytes([IDENTITY, 36]) + self.protobuf)

    @property
    def key_id(self) -> str:
        return _key_id(self.key_cid)

    def check(self, domain: bytes, payload: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's signature over ``domain + payload``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, domain + payload)
        except InvalidSignature:
            return False
        return True

    def verify(self, domain: bytes, payload: bytes, signature: bytes) -> None:
        if not self.check(domain, payload, signature):
            raise SignatureError(f"signature by {self.key_id} does not verify")

    def __str__(self) -> str:
        return self.key_id


@functools.lru_cache(maxsize=256)
def _key_id(cid: CID) -> str:
    # base36 through multibase costs milliseconds, and every attestation a batch signs names it.
    return cid.encode("base36")


class SigningKey:
    """An ed25519 private key; never printed, only its public half is."""

    __slots__ = ("_private", "public_key")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = PublicKey(raw=raw)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """A key from its 32-byte seed (deterministic test vectors)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(f"not an unencrypted PKCS#8 PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"expected an ed25519 key, got {type(key).__name__}")
        return cls(key)

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, the form Kubo's ``key/import`` takes (``pem-pkcs8-cleartext``)."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, domain: bytes, payload: bytes) -> bytes:
        """Sign ``domain + payload``; ``domain`` must be a non-empty tag ending in ``:``.

        One key may sign commits, roots, attestations and IPNS records, so an
        undomained signature could be read as any of them: there is no way to make one.
        """
        if not domain or not domain.endswith(b":") or b":" in domain[:-1]:
            raise ValueError(f"a signature domain is one tag ending in ':', got {domain!r}")
        return self._private.sign(domain + payload)

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id})"


class KeyStore:
    """Named private keys, one PEM file each, readable by the owner only (0600)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        if not _KEY_NAME.match(name):
            raise KeyStoreError(
                f"invalid key name {name!r}",
                hint="use letters, digits, '.', '_' or '-' (at most 64 characters)",
            )
        return self.directory / f"{name}.pem"

    def generate(self, name: str) -> SigningKey:
        path = self._path(name)
        if path.exists():
            raise KeyStoreError(
                f"a key named {name!r} already exists at {path}",
                hint="choose another name, or remove the old key file if you really mean it",
            )
        key = SigningKey.generate()
        self._write(path, key.to_pem())
        return key

    def add(self, name: str, key: SigningKey) -> None:
        path = self._path(name)
        if path.exists():
            raise KeyStoreError(f"a key named {name!r} already exists at {path}")
        self._write(path, key.to_pem())

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written under a temporary name and linked into place, so another
        # process creating the same name at once, or a failed write, never
        # leaves a partial key file behind.
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".key-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise KeyStoreError(
                    f"a key named {path.stem!r} already exists at {path}",
                    hint="choose another name",
                ) from None
        finally:
            os.unlink(temporary)

    def load(self, name: str) -> SigningKey:
        path = self._path(name)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyStoreError(
                f"no key named {name!r} in {self.directory}",
                hint="list keys with `ipfsbin key list`, create one with `ipfsbin key gen NAME`",
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStoreError(
                f"key file {path} is readable by others (mode {stat.S_IMODE(mode):o})",
                hint=f"run `chmod 600 {path}`",
            )
        return SigningKey.from_pem(path.read_bytes())

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.pem"))
