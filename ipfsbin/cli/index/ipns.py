"""``ipfsbin index publish``, ``republish`` and ``announce-roots``: the index over IPNS.

Registered in the ``index`` command group by its package.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any

import typer

from ipfsbin.cli.follow import parse_duration
from ipfsbin.cli.key import key_store
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.codec.cid import CID
from ipfsbin.errors import IndexOperationError
from ipfsbin.ipns.publish import announce_roots, announcing_keys, publish_head, republish
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.daemon import connect
from ipfsbin.kubo.pins import KuboPins, pin_name
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.trust.root import SignedRoot

__all__ = ["announce_roots_cmd", "publish_cmd", "republish_cmd"]

_ANNOUNCED_META = "x-announced-roots"

_OFFLINE_HELP = "Store the record in the local node even when no DHT peer takes it."
_IndexOpt = Annotated[str, typer.Option("--index", help="Local index workspace.")]
_LifetimeOpt = Annotated[str, typer.Option("--lifetime", help="How long the records stay valid.")]
_TtlOpt = Annotated[str, typer.Option("--ttl", help="How long resolvers may cache them.")]
_OfflineOpt = Annotated[bool, typer.Option("--allow-offline", help=_OFFLINE_HELP)]


def publish_cmd(
    index: _IndexOpt = "default",
    key: Annotated[
        str | None,
        typer.Option("--key", help="Key (in `ipfsbin key list`) in the root's publishers role."),
    ] = None,
    lifetime: _LifetimeOpt = "48h",
    ttl: _TtlOpt = "5m",
    allow_offline: _OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Point the index's IPNS name at its head commit (sequence = commit height)."""
    valid_for = parse_duration(lifetime)
    cache_for = parse_duration(ttl)
    with Workspace.open(name=index) as workspace:
        head = workspace.head_commit
        if head is None:
            raise IndexOperationError(
                f"index {index!r} has no commit to publish",
                hint="commit first: `ipfsbin index commit`",
            )
        root = workspace.signed_root
        key_name = key or workspace.publisher_key_name
        chain = workspace.root_chain()
        announcers = _announcers(workspace, chain)
        announced = workspace.get_meta(_ANNOUNCED_META)
    if key_name is None:
        raise IndexOperationError(
            f"index {index!r} has no publisher key set",
            hint="pass --key NAME (a key in the trust root's publishers role)",
        )
    signing_key = key_store().load(key_name)
    with connect() as client:
        result = publish_head(
            client,
            signing_key,
            head=head,
            root=root,
            lifetime=valid_for,
            ttl=cache_for,
            allow_offline=allow_offline,
        )
        announcements = _announce(
            client, index, chain, announcers, announced, valid_for, cache_for, allow_offline
        )
    emit(
        {**result.to_json(), "announcements": announcements},
        as_json,
        lambda r: "\n".join(
            [
                f"/ipns/{r['name']} -> {r['value']} (sequence {r['sequence']}, "
                f"valid until {r['validity']})",
                *(_render_announcement(a) for a in r["announcements"]),
            ]
        ),
    )


def announce_roots_cmd(
    index: _IndexOpt = "default",
    lifetime: _LifetimeOpt = "48h",
    ttl: _TtlOpt = "5m",
    allow_offline: _OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Announce the trust root chain under each local maintainer key's own IPNS name.

    Followers ask the maintainers for newer roots, so a rotation reaches them
    even if the index's IPNS name withholds it (`index publish` does this too).
    """
    valid_for = parse_duration(lifetime)
    cache_for = parse_duration(ttl)
    with Workspace.open(name=index) as workspace:
        chain = workspace.root_chain()
        announcers = _announcers(workspace, chain)
        announced = workspace.get_meta(_ANNOUNCED_META)
    if not announcers:
        raise IndexOperationError(
            f"no local key of index {index!r} announces trust root version {chain[-1].version}",
            hint="announcements are made with maintainer keys that are not publishers; "
            "hold one of them here, or let another maintainer announce",
        )
    with connect() as client:
        results = _announce(
            client, index, chain, announcers, announced, valid_for, cache_for, allow_offline
        )
    emit(results, as_json, lambda rs: "\n".join(_render_announcement(r) for r in rs))


def _announcers(workspace: Workspace, chain: Sequence[SignedRoot]) -> list[str]:
    """Names of the local keys that announce ``chain``."""
    eligible = announcing_keys(chain)
    return [name for name, key_id in workspace.key_names if key_id in eligible]


def _announce(
    client: KuboClient,
    index: str,
    chain: Sequence[SignedRoot],
    announcers: Sequence[str],
    announced: str | None,
    lifetime: timedelta,
    ttl: timedelta,
    allow_offline: bool,
) -> list[dict[str, Any]]:
    results = []
    list_cid: CID | None = None
    for name in announcers:
        list_cid, result = announce_roots(
            client,
            key_store().load(name),
            chain=chain,
            lifetime=lifetime,
            ttl=ttl,
            allow_offline=allow_offline,
        )
        results.append({**result.to_json(), "key": name, "roots_list": str(list_cid)})
    if list_cid is not None:
        # the list must stay fetchable while the records point at it
        old = None if announced is None else CID.from_text(announced)
        KuboPins(client).move(old, list_cid, pin_name("index", index, "announced-roots"))
        with Workspace.open(name=index) as workspace:
            workspace.set_meta(_ANNOUNCED_META, str(list_cid))
    return results


def _render_announcement(r: dict[str, Any]) -> str:
    return (
        f"announced trust root version {r['sequence']} under /ipns/{r['name']} "
        f"(key {r['key']}, valid until {r['validity']})"
    )


def republish_cmd(
    name: Annotated[str, typer.Argument(help="IPNS name to keep alive (k51…).")],
    allow_offline: _OfflineOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-put the current best valid record of NAME unchanged (any mirror may do this)."""
    with connect() as client:
        record = republish(client, name, allow_offline=allow_offline)
    result = {
        "name": record.name,
        "value": record.value,
        "sequence": record.sequence,
        "validity": record.validity_text,
    }
    emit(
        result,
        as_json,
        lambda r: (
            f"re-put /ipns/{r['name']} -> {r['value']} (sequence {r['sequence']}, "
            f"valid until {r['validity']})"
        ),
    )
