"""``ipfsbin index rotate-root``, ``sign-root`` and ``drop-draft-root``: trust root rotation."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ipfsbin.cli.index._common import (
    NameOpt,
    app,
    drop_draft_of,
    key_id_of,
    now,
    parse_cid,
    session,
)
from ipfsbin.cli.key import key_store
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.errors import IndexOperationError
from ipfsbin.kubo import connect
from ipfsbin.kubo.pins import KuboPins
from ipfsbin.maintainer import roots
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.store.base import BlockStore
from ipfsbin.store.kubo import KuboBlockStore

# -- trust root rotation ------------------------------------------------------------------


def _ids(values: list[str] | None) -> tuple[str, ...]:
    return tuple(key_id_of(v) for v in values or ())


def _render_root(r: dict[str, Any]) -> str:
    old, new = r["old_maintainers"], r["new_maintainers"]
    signed = (
        f"signed by {len(old['signed_by'])} of {old['threshold']} old and "
        f"{len(new['signed_by'])} of {new['threshold']} new maintainers"
    )
    if r["adopted"]:
        state = "trust root"
    elif r["threshold_met"]:
        state = "threshold met:"
    else:
        state = "draft root"
    lines = [f"{state} {r['envelope']} (version {r['version']}, {signed})"]
    if not r["threshold_met"]:
        missing = sorted({*old["missing"], *new["missing"]} - set(r["signed_by"]))
        lines.append(f"  missing signatures from: {', '.join(missing)}")
        lines.append(f"  co-signers run: ipfsbin index sign-root {r['envelope']} --key NAME")
    elif not r["adopted"]:
        lines.append(f"  the maintainer runs: ipfsbin index sign-root {r['envelope']}")
    for role in ("maintainers", "publishers", "builders"):
        info = r[role]
        lines.append(f"{role} ({info['threshold']} of {len(info['keys'])}):")
        lines += [f"  {k}" for k in info["keys"]]
    return "\n".join(lines)


@app.command("rotate-root")
def rotate_root(
    key: Annotated[
        list[str], typer.Option("--key", help="Local maintainer key that signs (repeatable).")
    ],
    add_maintainer: Annotated[
        list[str] | None,
        typer.Option("--add-maintainer", help="Key ID (or local name) to make a maintainer."),
    ] = None,
    remove_maintainer: Annotated[
        list[str] | None,
        typer.Option("--remove-maintainer", help="Maintainer key ID to revoke (or local name)."),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option("--threshold", help="Maintainer signatures needed (default: kept)."),
    ] = None,
    add_publisher: Annotated[
        list[str] | None, typer.Option("--add-publisher", help="Key ID that signs IPNS records.")
    ] = None,
    remove_publisher: Annotated[
        list[str] | None, typer.Option("--remove-publisher", help="Publisher key ID to drop.")
    ] = None,
    add_builder: Annotated[
        list[str] | None, typer.Option("--add-builder", help="Key ID of a trusted builder.")
    ] = None,
    remove_builder: Annotated[
        list[str] | None, typer.Option("--remove-builder", help="Builder key ID to drop.")
    ] = None,
    expires: Annotated[
        int, typer.Option("--expires", help="Days until the new trust root expires.")
    ] = roots.DEFAULT_ROOT_DAYS,
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Make the next trust root version; adopted at once when the local keys meet both
    the old and the new maintainers' thresholds, else kept as a draft for co-signers.

    Roles not mentioned are kept: publishers and builders do not follow the maintainers.
    """
    store_keys = key_store()
    keys = [(k, store_keys.load(k)) for k in key]
    change = roots.RootChange(
        add_maintainers=_ids(add_maintainer),
        remove_maintainers=_ids(remove_maintainer),
        threshold=threshold,
        add_publishers=_ids(add_publisher),
        remove_publishers=_ids(remove_publisher),
        add_builders=_ids(add_builder),
        remove_builders=_ids(remove_builder),
        expires_days=expires,
    )
    with session(name) as (workspace, client, store):
        result = roots.rotate_root(workspace, store, KuboPins(client), keys, change, now=now())
    emit(result.to_json(), as_json, _render_root)


@app.command("sign-root")
def sign_root(
    envelope: Annotated[str, typer.Argument(help="Envelope CID of the trust root to co-sign.")],
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="Local maintainer key that signs (omit to only merge)."),
    ] = None,
    standalone: Annotated[
        bool,
        typer.Option("--standalone", help="Sign without a local index (a co-signer elsewhere)."),
    ] = False,
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Co-sign a new trust root version; adopted once both thresholds are met."""
    cid = parse_cid(envelope, "trust root envelope CID")
    store_keys = key_store()
    keys = [(k, store_keys.load(k)) for k in key or ()]
    if standalone:
        if not keys:
            raise IndexOperationError("--standalone needs --key", hint="pass --key NAME")
        with connect() as client:
            remote: BlockStore = KuboBlockStore(client, offline=False)
            result = roots.sign_root(None, remote, KuboPins(client), cid, keys, now=now())
    else:
        with session(name) as (workspace, client, store):
            result = roots.sign_root(workspace, store, KuboPins(client), cid, keys, now=now())
    emit(result.to_json(), as_json, _render_root)


@app.command("drop-draft-root")
def drop_draft_root(name: NameOpt = "default", as_json: JsonOpt = False) -> None:
    """Forget the trust root version waiting for co-signatures."""
    drop_draft_of(name, "draft root", as_json, Workspace.drop_draft_root)
