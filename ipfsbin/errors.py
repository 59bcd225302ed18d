"""Every error ipfsbin raises on purpose.

The tree::

    IpfsbinError                    base; carries an optional ``hint`` for the user
    ├── CodecError                  bytes that are not strict DAG-CBOR, a bad CID, a bad CAR
    │   └── BlockMismatchError      a block's bytes do not hash to its CID
    ├── KuboError                   the Kubo daemon refused, failed or could not be reached
    │   ├── KuboUnavailableError    no daemon answers at the API address
    │   ├── KuboCommandError        Kubo answered with an error (its message is kept)
    │   ├── KuboStreamError         a streamed answer ended early or was corrupt
    │   └── KuboInstallError        no usable Kubo binary and none could be built
    ├── NodeError                   the managed node could not be started or stopped
    ├── StoreError                  a block store could not give or keep a block
    │   └── BlockNotFoundError      the block is not there
    ├── BinpkgError                 a binary package that cannot be read or shared
    ├── DescriptorError             build settings that cannot be normalized
    ├── SchemaError                 an object that does not match its schema in ``schema/``
    ├── KeyStoreError               a signing key that cannot be made, found or read
    ├── TrustError                  a statement that may not be trusted
    │   ├── SignatureError          a signature that does not verify
    │   ├── ThresholdError          fewer valid signatures than the role requires
    │   ├── RollbackError           a height not above the accepted one
    │   ├── HistoryError            the accepted head is not an ancestor (rewritten history)
    │   ├── ExpiredError            a commit or root past its expiry (freeze attack)
    │   ├── RevokedKeyError         a signature by a key the current root no longer lists
    │   ├── RotationError           a new trust root not signed by the old threshold
    │   └── FeedError               a builder feed that dropped or changed an entry, or is malformed
    ├── IpnsError                   an IPNS record that is malformed or does not verify
    ├── IndexOperationError         an index operation that cannot be done
    ├── SubscriptionError           a subscription that cannot be followed
    ├── HostError                   this host's configuration cannot be read
    ├── ConfigError                 the ipfsbin configuration file is malformed
    ├── ServeError                  the local binhost cannot serve
    ├── DamagedStateError           a state file SQLite cannot read (which one, and how to recover)
    └── ClusterError                IPFS Cluster (or a pinning service) refused or did not answer

Callers' mistakes (wrong types, calls out of order) raise ``TypeError``,
``ValueError`` or ``RuntimeError`` instead.
"""

from __future__ import annotations

__all__ = [
    "BinpkgError",
    "BlockMismatchError",
    "ClusterError",
    "BlockNotFoundError",
    "CodecError",
    "ConfigError",
    "DamagedStateError",
    "DescriptorError",
    "ExpiredError",
    "FeedError",
    "HistoryError",
    "HostError",
    "IndexOperationError",
    "IpfsbinError",
    "IpnsError",
    "KeyStoreError",
    "KuboCommandError",
    "KuboError",
    "KuboInstallError",
    "KuboStreamError",
    "KuboUnavailableError",
    "NodeError",
    "RevokedKeyError",
    "RollbackError",
    "RotationError",
    "SchemaError",
    "ServeError",
    "SignatureError",
    "StoreError",
    "SubscriptionError",
    "ThresholdError",
    "TrustError",
]


class IpfsbinError(Exception):
    """Base of every deliberate error; ``hint`` says what the user can do."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class CodecError(IpfsbinError):
    pass


class BlockMismatchError(CodecError):
    pass


class KuboError(IpfsbinError):
    pass


class KuboUnavailableError(KuboError):
    pass


class KuboCommandError(KuboError):
    """Kubo answered with an error; ``kubo_message`` is Kubo's own text."""

    def __init__(
        self,
        command: str,
        kubo_message: str,
        *,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(f"kubo {command}: {kubo_message}", hint=hint)
        self.command = command
        self.kubo_message = kubo_message
        self.status = status


class KuboStreamError(KuboError):
    pass


class KuboInstallError(KuboError):
    pass


class NodeError(IpfsbinError):
    pass


class StoreError(IpfsbinError):
    pass


class BlockNotFoundError(StoreError):
    pass


class BinpkgError(IpfsbinError):
    pass


class DescriptorError(IpfsbinError):
    pass


class SchemaError(IpfsbinError):
    pass


class KeyStoreError(IpfsbinError):
    pass


class TrustError(IpfsbinError):
    pass


class SignatureError(TrustError):
    pass


class ThresholdError(TrustError):
    pass


class RollbackError(TrustError):
    pass


class HistoryError(TrustError):
    pass


class ExpiredError(TrustError):
    pass


class RevokedKeyError(TrustError):
    pass


class RotationError(TrustError):
    pass


class FeedError(TrustError):
    pass


class IpnsError(IpfsbinError):
    pass


class IndexOperationError(IpfsbinError):
    pass


class SubscriptionError(IpfsbinError):
    pass


class HostError(IpfsbinError):
    """This host's configuration cannot be read or understood."""


class ConfigError(IpfsbinError):
    """The ipfsbin configuration file is malformed."""


class ServeError(IpfsbinError):
    """The local binhost cannot serve (bad address, nothing to serve)."""


class DamagedStateError(IpfsbinError):
    pass


class ClusterError(IpfsbinError):
    pass
