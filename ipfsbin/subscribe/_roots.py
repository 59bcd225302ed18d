"""Root discovery: the trust roots a new head was signed under, fed to the chain in order."""

from __future__ import annotations

from ipfsbin.errors import TrustError
from ipfsbin.store.base import BlockStore
from ipfsbin.subscribe.state import Subscription
from ipfsbin.trust.commit import SignedCommit
from ipfsbin.trust.root import SignedRoot, load_root
from ipfsbin.trust.signing import check_signatures
from ipfsbin.trust.state import TrustedChain

__all__ = ["check_publisher", "load_roots"]


def load_roots(
    sub: Subscription, chain: TrustedChain, store: BlockStore, head: SignedCommit
) -> list[SignedRoot]:
    """Feed the chain the accepted roots, then those the new head's envelope lists.

    A commit links only its root's ID; its envelope lists (unsigned) the root
    envelopes from version 1 on. Each one is checked by ``update_root`` like a
    root the user gave: the first against the pin, every next one by the
    thresholds of the previous version and its own.
    """
    roots = [load_root(store, cid) for cid in sub.roots]
    if not any(r.root_id == head.commit.root for r in roots):
        roots += _discover_roots(sub, roots, store, head)
    if not roots:
        raise TrustError(
            f"commit {head.commit_id} does not list its trust root's envelope, and no root "
            f"is known for {sub.name}",
            hint=f"subscribe with the root's envelope CID: `ipfsbin unsubscribe {sub.name}`, "
            f"then `ipfsbin subscribe {sub.name} --root CID`",
        )
    for signed in roots:
        chain.update_root(signed)
    return roots


def _discover_roots(
    sub: Subscription, known: list[SignedRoot], store: BlockStore, head: SignedCommit
) -> list[SignedRoot]:
    """Roots listed in ``head``'s envelope newer than ``known``, oldest first (unverified)."""
    newest = known[-1].version if known else 0
    found: list[SignedRoot] = []
    for cid in head.roots:
        if cid in sub.roots:
            continue
        signed = load_root(store, cid)
        if signed.version <= newest:
            continue  # accepted already (another envelope of it), or older than the pin
        found.append(signed)
        newest = signed.version
        if signed.root_id == head.commit.root:
            break
    key_id = sub.pin.key_id
    if not known and key_id is not None:
        # a key pin starts at the first version that key signed as a maintainer; when none
        # did, the first is fed anyway so that update_root refuses it with its own reason
        start = next(
            (i for i, r in enumerate(found) if key_id in _maintainer_signers(r)),
            0,
        )
        found = found[start:]
    return found


def _maintainer_signers(signed: SignedRoot) -> tuple[str, ...]:
    return check_signatures(signed, signed.root.maintainers).valid


def check_publisher(sub: Subscription, chain: TrustedChain) -> None:
    publishers = chain.root.root.publishers
    if sub.name not in publishers:
        raise TrustError(
            f"IPNS name {sub.name} is not in the publishers role of trust root version "
            f"{chain.root.version} (publishers: {', '.join(publishers.keys)})",
            hint="the name was subscribed with the wrong trust root, or is not the index's",
        )
