"""Pulling builder feeds into a maintainer's staged changes, under a policy.

For every build (index key) that the verified feed updates touched, all
attestations the pulled feeds hold for it (and those the index entry already
has) are grouped by the bytes they state (:mod:`ipfsbin.maintainer.repro`);
only builders the policy allows count. Then, per ``schema/maintainer.md``
("Pulling builder feeds"):

- one result with at least ``min_builders`` builders: merged (checked and
  staged by :func:`ipfsbin.maintainer.curate.add`, bytes and all);
- fewer: pending, until more builders agree in a later pull;
- several results (the builders disagree): ``keep-both`` merges every
  attestation when the largest group reaches ``min_builders`` (the entry keeps
  its manifest, or takes the largest group's); ``majority`` merges only a
  strictly largest group that reaches ``min_builders``; ``yank-and-flag``
  stages the entry as yanked, its reason naming who built what.

A build whose attestations fail curate's checks is refused with the reason,
and the pull goes on with the others. Every touched build is also an item of
the challenge report (:mod:`ipfsbin.maintainer.challenge`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args

from ipfsbin.codec.cid import CID
from ipfsbin.errors import ConfigError, SchemaError, TrustError
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.maintainer import curate
from ipfsbin.maintainer.challenge import ChallengeItem, ChallengeReport, challenge_item
from ipfsbin.maintainer.repro import Outcome, ReproView, load_attestations, reproducibility
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.feed import FeedUpdate
from ipfsbin.trust.signing import public_key_of

__all__ = ["DISAGREEMENT_RULES", "Decision", "Disagreement", "PullPolicy", "PullResult", "pull"]

Disagreement = Literal["keep-both", "majority", "yank-and-flag"]
DISAGREEMENT_RULES: Final[tuple[str, ...]] = get_args(Disagreement)
Action = Literal["merged", "unchanged", "pending", "yanked", "refused"]
_POLICY_KEYS: Final = frozenset({"builders", "min_builders", "on_disagreement"})


@dataclass(frozen=True, kw_only=True)
class PullPolicy:
    """Which builders count, how many must agree, and what a disagreement does.

    ``builders`` None means the trust root's builders role.
    """

    builders: tuple[str, ...] | None = None
    min_builders: int = 1
    on_disagreement: Disagreement = "keep-both"

    def __post_init__(self) -> None:
        if type(self.min_builders) is not int or self.min_builders < 1:
            raise ConfigError(f"min_builders must be an integer >= 1, got {self.min_builders!r}")
        if self.on_disagreement not in DISAGREEMENT_RULES:
            raise ConfigError(
                f"on_disagreement is {self.on_disagreement!r}, expected one of "
                + ", ".join(DISAGREEMENT_RULES)
            )
        for key_id in self.builders or ():
            try:
                public_key_of(key_id)
            except TrustError as exc:
                raise ConfigError(f"builders: {key_id!r} is not a key ID ({exc.message})") from exc

    @classmethod
    def from_file(cls, path: Path) -> PullPolicy:
        """The policy in the TOML file ``path`` (format in ``schema/maintainer.md``)."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read pull policy {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"pull policy {path} is not valid TOML: {exc}") from exc
        unknown = sorted(set(data) - _POLICY_KEYS)
        if unknown:
            raise ConfigError(
                f"pull policy {path} has unknown keys {', '.join(unknown)}",
                hint="known keys: " + ", ".join(sorted(_POLICY_KEYS)),
            )
        builders = data.get("builders")
        if builders is not None and (
            not isinstance(builders, list) or not all(isinstance(b, str) for b in builders)
        ):
            raise ConfigError(f"pull policy {path}: builders must be a list of key IDs")
        return cls(
            builders=None if builders is None else tuple(builders),
            min_builders=data.get("min_builders", 1),
            on_disagreement=data.get("on_disagreement", "keep-both"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "builders": None if self.builders is None else list(self.builders),
            "min_builders": self.min_builders,
            "on_disagreement": self.on_disagreement,
        }


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What the pull did with one build."""

    key: str
    cpv: str
    action: Action
    reason: str
    attestations: tuple[CID, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "cpv": self.cpv,
            "action": self.action,
            "reason": self.reason,
            "attestations": [str(a) for a in self.attestations],
        }


@dataclass(frozen=True, kw_only=True)
class PullResult:
    feeds: tuple[FeedUpdate, ...]
    decisions: tuple[Decision, ...]
    challenge: ChallengeReport
    policy: PullPolicy = field(default_factory=PullPolicy)

    @property
    def exit_code(self) -> int:
        return self.challenge.exit_code

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.to_json(),
            "feeds": [
                {
                    "name": u.name,
                    "height": u.head.height,
                    "previous_height": None if u.previous is None else u.previous.height,
                    "added": len(u.added),
                }
                for u in self.feeds
            ],
            "decisions": [d.to_json() for d in self.decisions],
            "challenge": self.challenge.to_json(),
        }


def _links(store: BlockStore, updates: Sequence[FeedUpdate], build_key: str) -> set[CID]:
    """Every attestation the pulled feeds hold for ``build_key``."""
    tree = ProllyTree(store)
    found: set[CID] = set()
    for update in updates:
        for _, value in tree.scan(update.head.commit.index, build_key + "/"):
            found.update(IndexEntry.from_dag(value).attestations)
    return found


def _describe(outcomes: Sequence[Outcome]) -> str:
    return "; ".join(f"{', '.join(o.builders)} -> sha256 {o.sha256.hex()[:16]}" for o in outcomes)


def _plan(outcomes: Sequence[Outcome], policy: PullPolicy) -> tuple[Action, str, tuple[CID, ...]]:
    """What to do with one build's groups: action, reason, attestations to merge (in order)."""
    k = policy.min_builders
    if not outcomes:
        return "pending", "no attestation by an allowed builder", ()
    largest = outcomes[0]
    if len(outcomes) == 1:
        count = len(largest.builders)
        if count < k:
            return "pending", f"{count} of {k} agreeing builders", ()
        return "merged", f"{count} builder{'s' if count != 1 else ''} agree", largest.attestations
    rule = policy.on_disagreement
    summary = "builders disagree: " + _describe(outcomes)
    everything = tuple(a for o in outcomes for a in o.attestations)
    if rule == "yank-and-flag":
        return "yanked", summary, everything
    if len(largest.builders) < k:
        return "pending", f"{summary}; no result has {k} builders", ()
    if rule == "keep-both":
        return (
            "merged",
            f"{summary}; keeping both",
            tuple(a for o in outcomes for a in o.attestations),
        )
    if len(largest.builders) == len(outcomes[1].builders):
        return "pending", f"{summary}; no majority", ()
    return "merged", f"{summary}; the majority's build kept", largest.attestations


def _decide(
    workspace: Workspace,
    store: BlockStore,
    read: curate.FileReader,
    build_key: str,
    cpv: str,
    view: ReproView,
    policy: PullPolicy,
) -> Decision:
    action, reason, links = _plan(view.outcomes, policy)
    if action == "pending" or not links:
        return Decision(key=build_key, cpv=cpv, action=action, reason=reason)
    unlisted = policy.builders is not None
    try:
        staged = curate.add(workspace, store, read, list(links), allow_unlisted_builder=unlisted)
        if action == "yanked":
            curate.yank(workspace, store, build_key, f"flagged by pull: {reason}")
    except (TrustError, SchemaError) as exc:
        return Decision(key=build_key, cpv=cpv, action="refused", reason=exc.message)
    if action == "merged" and all(s.action is None for s in staged):
        action = "unchanged"
    return Decision(key=build_key, cpv=cpv, action=action, reason=reason, attestations=links)


def pull(
    workspace: Workspace,
    store: BlockStore,
    read: curate.FileReader,
    updates: Sequence[FeedUpdate],
    policy: PullPolicy,
) -> PullResult:
    """Decide every build the verified ``updates`` touched, staging what passes ``policy``."""
    allowed = set(policy.builders or workspace.signed_root.root.builders.keys)
    touched: dict[str, str] = {}
    for update in updates:
        for entry in update.added:
            touched[entry.build_key] = entry.cpv
    tree = ProllyTree(store)
    decisions: list[Decision] = []
    items: list[ChallengeItem] = []
    for build_key in sorted(touched):
        cpv = touched[build_key]
        current, _ = curate.current_entry(workspace, tree, build_key)
        links = _links(store, updates, build_key)
        if current is not None:
            links.update(current.attestations)
        loaded = load_attestations(store, sorted(links))
        counted = [(a, tuple(s for s in signers if s in allowed)) for a, signers in loaded]
        view = reproducibility([(a, s) for a, s in counted if s])
        ignored = sorted({s for _, signers in loaded for s in signers} - allowed)
        note = f"not allowed: {', '.join(ignored)}" if ignored else ""
        items.append(challenge_item(cpv, build_key, view, note=note))
        decisions.append(_decide(workspace, store, read, build_key, cpv, view, policy))
    return PullResult(
        feeds=tuple(updates),
        decisions=tuple(decisions),
        challenge=ChallengeReport.of(items),
        policy=policy,
    )
