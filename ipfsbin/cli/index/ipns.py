"""``ipfsbin index publish`` and ``ipfsbin index republish``: the index head over IPNS.

The lead registers both in the ``index`` command group.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ipfsbin.cli.follow import parse_duration
from ipfsbin.cli.key import key_store
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.errors import IndexOperationError
from ipfsbin.ipns.publish import publish_head, republish
from ipfsbin.kubo.daemon import connect
from ipfsbin.maintainer.workspace import Workspace

__all__ = ["publish_cmd", "republish_cmd"]

_OFFLINE_HELP = "Store the record in the local node even when no DHT peer takes it."


def publish_cmd(
    index: Annotated[str, typer.Option("--index", help="Local index workspace.")] = "default",
    key: Annotated[
        str | None,
        typer.Option("--key", help="Key (in `ipfsbin key list`) in the root's publishers role."),
    ] = None,
    lifetime: Annotated[
        str, typer.Option("--lifetime", help="How long the record stays valid.")
    ] = "48h",
    ttl: Annotated[str, typer.Option("--ttl", help="How long resolvers may cache it.")] = "5m",
    allow_offline: Annotated[bool, typer.Option("--allow-offline", help=_OFFLINE_HELP)] = False,
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
    emit(
        result.to_json(),
        as_json,
        lambda r: (
            f"/ipns/{r['name']} -> {r['value']} (sequence {r['sequence']}, "
            f"valid until {r['validity']})"
        ),
    )


def republish_cmd(
    name: Annotated[str, typer.Argument(help="IPNS name to keep alive (k51…).")],
    allow_offline: Annotated[bool, typer.Option("--allow-offline", help=_OFFLINE_HELP)] = False,
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
