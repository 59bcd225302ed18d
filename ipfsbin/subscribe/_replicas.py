"""The state of host-scoped replicas: platforms met, nodes surveyed, policy and summary.

A mixin of :class:`~ipfsbin.subscribe.state.SubscriptionStore` (the same
SQLite file, version 5 tables; ``schema/subscription.md`` describes them).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Final, Literal, cast

from ipfsbin.codec.cid import CID
from ipfsbin.ipns.name import canonical_name

__all__ = ["REPLICA_POLICIES", "ReplicaPolicy", "ReplicaTables"]

ReplicaPolicy = Literal["host", "full"]
REPLICA_POLICIES: Final[tuple[ReplicaPolicy, ...]] = ("host", "full")


class ReplicaTables:
    """Reads and writes the version-5 tables; the store supplies the connection."""

    _db: sqlite3.Connection

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def replica_policy(self, name: str) -> ReplicaPolicy | None:
        """The policy given when subscribing to ``name`` (None: the configured default)."""
        row = self._db.execute(
            "SELECT policy FROM replicas WHERE name = ?", (canonical_name(name),)
        ).fetchone()
        return None if row is None else cast("ReplicaPolicy | None", row[0])

    def set_replica_policy(self, name: str, policy: ReplicaPolicy | None) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO replicas (name, policy) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET policy = excluded.policy",
                (canonical_name(name), policy),
            )

    def survey(self, name: str) -> dict[str, object] | None:
        """The summary of the last survey of ``name``'s platforms (None: never surveyed)."""
        row = self._db.execute(
            "SELECT survey FROM replicas WHERE name = ?", (canonical_name(name),)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return cast("dict[str, object]", json.loads(row[0]))

    def known_platforms(self) -> dict[str, tuple[CID, bytes]]:
        """Every platform block met so far, by platform id."""
        rows = self._db.execute("SELECT platform_id, cid, data FROM platforms")
        return {row[0]: (CID.from_text(row[1]), bytes(row[2])) for row in rows}

    def surveyed(self, name: str) -> dict[CID, tuple[str, ...]]:
        """Nodes of ``name``'s index whose platforms are all known, with those platforms."""
        rows = self._db.execute(
            "SELECT cid, platforms FROM surveyed WHERE name = ?", (canonical_name(name),)
        )
        return {CID.from_text(row[0]): tuple(json.loads(row[1])) for row in rows}

    def record_survey(
        self,
        name: str,
        *,
        platforms: Mapping[str, tuple[CID, bytes]],
        surveyed: Mapping[CID, Iterable[str]],
        summary: Mapping[str, object],
    ) -> None:
        """Keep new platform blocks, replace ``name``'s surveyed nodes, record the summary."""
        canonical = canonical_name(name)
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO platforms (platform_id, cid, data) VALUES (?, ?, ?)",
                [(pid, str(cid), data) for pid, (cid, data) in platforms.items()],
            )
            db.execute("DELETE FROM surveyed WHERE name = ?", (canonical,))
            db.executemany(
                "INSERT INTO surveyed (name, cid, platforms) VALUES (?, ?, ?)",
                [(canonical, str(cid), json.dumps(sorted(p))) for cid, p in surveyed.items()],
            )
            db.execute(
                "INSERT INTO replicas (name, survey) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET survey = excluded.survey",
                (canonical, json.dumps(dict(summary), sort_keys=True)),
            )
