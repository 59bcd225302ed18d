"""Root discovery: the trust roots a new head was signed under, fed to the chain in order."""

from __future__ import annotations

from typing import Final

from ipfsbin.errors import TrustError
from ipfsbin.store.base import BlockStore
from ipfsbin.subscribe.state import Subscription
from ipfsbin.trust.commit import SignedCommit
from ipfsbin.trust.root import SignedRoot, load_root
from ipfsbin.trust.signing import check_signatures
from ipfsbin.trust.state import TrustedChain

__all__ = ["MAX_UNSIGNED_ROOTS", "check_publisher", "load_roots"]

MAX_UNSIGNED_ROOTS: Final = 32
"""Listed roots a key-pinned follower fetches, on its first sync, before one its key signed."""


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
    for signed in roots:
        chain.update_root(signed)
    if not any(r.root_id == head.commit.root for r in roots):
        roots += _discover_roots(sub, chain, roots, store, head)
    if not roots:
        raise TrustError(
            f"commit {head.commit_id} does not list its trust root's envelope, and no root "
            f"is known for {sub.name}",
            hint=f"subscribe with the root's envelope CID: `ipfsbin unsubscribe {sub.name}`, "
            f"then `ipfsbin subscribe {sub.name} --root CID`",
        )
    return roots


def _discover_roots(
    sub: Subscription,
    chain: TrustedChain,
    known: list[SignedRoot],
    store: BlockStore,
    head: SignedCommit,
) -> list[SignedRoot]:
    """Roots listed in ``head``'s envelope after ``known``, each verified before the next.

    The commit's own signatures can be checked only under its root, so the
    roots come first; to bound what an unsigned list can make a follower
    fetch, the versions already accepted are skipped by position (the list is
    version 1 first), every fetched root goes through ``update_root`` at once
    (a bad one stops the walk), and nothing past the commit's root is fetched.
    A key pin on the first sync cannot check the roots before the first
    version its key signed: at most :data:`MAX_UNSIGNED_ROOTS` of those are fetched.
    """
    listed = head.roots[known[-1].version :] if known else head.roots
    found: list[SignedRoot] = []
    skipped: list[SignedRoot] = []
    key_id = sub.pin.key_id
    for cid in listed:
        signed = load_root(store, cid)
        if not known and not found and key_id is not None:
            # a key pin starts at the first version that key signed as a maintainer
            if key_id not in _maintainer_signers(signed):
                skipped.append(signed)
                if len(skipped) > MAX_UNSIGNED_ROOTS:
                    break
                continue
        chain.update_root(signed)
        found.append(signed)
        if signed.root_id == head.commit.root:
            break
    if not found and skipped:
        chain.update_root(skipped[0])  # refuses it, with the reason the pin gives
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
