"""``ipfsbin index init``, ``add``, ``yank``, ``reset`` and ``status``: the staged changes."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ipfsbin.cli.index._common import (
    NameOpt,
    app,
    key_id_of,
    now,
    parse_cid,
    session,
    short,
    when,
)
from ipfsbin.cli.key import key_store
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.kubo import connect
from ipfsbin.kubo.pins import KuboPins
from ipfsbin.maintainer import chain, curate
from ipfsbin.maintainer.report import index_status
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.keys import SigningKey

# -- init ---------------------------------------------------------------------------------


@app.command()
def init(
    key: Annotated[
        list[str], typer.Option("--key", help="Local maintainer key name (repeat for several).")
    ],
    maintainer: Annotated[
        list[str] | None,
        typer.Option("--maintainer", help="Another maintainer's key ID (repeatable)."),
    ] = None,
    threshold: Annotated[
        int, typer.Option("--threshold", help="Maintainer signatures a commit needs.")
    ] = 1,
    publisher: Annotated[
        list[str] | None,
        typer.Option("--publisher", help="Key ID (or local name) that signs IPNS records."),
    ] = None,
    builder: Annotated[
        list[str] | None,
        typer.Option("--builder", help="Key ID (or local name) of a trusted builder."),
    ] = None,
    expires: Annotated[
        int, typer.Option("--expires", help="Days until the trust root expires.")
    ] = chain.DEFAULT_ROOT_DAYS,
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Create a trust root (version 1) signed by the local keys, and an empty index."""
    store_keys = key_store()
    keys: list[tuple[str, SigningKey]] = [(k, store_keys.load(k)) for k in key]
    with connect() as client:
        _, result = chain.init_index(
            name,
            store=KuboBlockStore(client),
            pins=KuboPins(client),
            keys=keys,
            maintainers=[key_id_of(m) for m in maintainer or ()],
            threshold=threshold,
            publishers=None if publisher is None else [key_id_of(p) for p in publisher],
            builders=None if builder is None else [key_id_of(b) for b in builder],
            expires_days=expires,
            now=now(),
        )

    def render(r: dict[str, Any]) -> str:
        lines = [
            f"index {r['name']}: trust root {r['root']} (version {r['version']}, "
            f"expires {when(r['expires'])})",
            f"head {r['head']} (empty index)",
        ]
        for role in ("maintainers", "publishers", "builders"):
            info = r[role]
            lines.append(f"{role} ({info['threshold']} of {len(info['keys'])}):")
            local = {v: k for k, v in r["local_keys"].items()}
            lines += [f"  {k}" + (f"  ({local[k]})" if k in local else "") for k in info["keys"]]
        return "\n".join(lines)

    emit(result.to_json(), as_json, render)


# -- staging ------------------------------------------------------------------------------


@app.command()
def add(
    cids: Annotated[list[str], typer.Argument(help="Attestation CIDs (or manifest CIDs).")],
    allow_unlisted_builder: Annotated[
        bool,
        typer.Option(
            "--allow-unlisted-builder",
            help="Accept attestations by builders the trust root does not list.",
        ),
    ] = False,
    allow_unattested: Annotated[
        bool,
        typer.Option(
            "--allow-unattested", help="Accept bare manifests without a builder attestation."
        ),
    ] = False,
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Check attestations (signature, manifest, descriptor, the bytes behind the CID) and stage."""
    parsed = [parse_cid(c) for c in cids]
    with session(name) as (workspace, client, store):
        results = curate.add(
            workspace,
            store,
            lambda cid: client.cat(cid),
            parsed,
            allow_unlisted_builder=allow_unlisted_builder,
            allow_unattested=allow_unattested,
        )

    def render(rows: list[dict[str, Any]]) -> str:
        lines = []
        for r in rows:
            builders = sorted({b for a in r["accepted"] for b in a["builders"]})
            note = "  (builders disagree on the bytes)" if r["disagree"] else ""
            lines.append(
                f"{r['action']:<9} {r['key']}  {r['accepted'][0]['cpv']}  "
                f"by {', '.join(short(b) for b in builders) or 'no builder'}{note}"
            )
        return "\n".join(lines)

    emit([r.to_json() for r in results], as_json, render)


@app.command()
def yank(
    key: Annotated[str, typer.Argument(help="Index key of the entry to withdraw.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is withdrawn.")],
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Stage an entry as yanked: clients will never serve it."""
    with session(name) as (workspace, _, store):
        change = curate.yank(workspace, store, key, reason)
    emit(
        {"key": change.key, "action": "yank", "reason": change.entry.reason},
        as_json,
        lambda r: f"yank      {r['key']}  ({r['reason']})",
    )


@app.command()
def reset(name: NameOpt = "default", as_json: JsonOpt = False) -> None:
    """Drop every staged change."""
    workspace = Workspace.open(name)
    try:
        dropped = workspace.unstage()
    finally:
        workspace.close()
    emit({"dropped": dropped}, as_json, lambda r: f"dropped {r['dropped']} staged change(s)")


@app.command()
def status(name: NameOpt = "default", as_json: JsonOpt = False) -> None:
    """Trust root, head, draft and staged changes of the local index (no daemon needed)."""
    with Workspace.open(name) as workspace:
        result = index_status(workspace).to_json()

    def render(r: dict[str, Any]) -> str:
        m = r["maintainers"]
        lines = [
            f"index {r['name']}: root {r['root']} (version {r['root_version']}, "
            f"{m['threshold']} of {len(m['keys'])} maintainers, "
            f"expires {when(r['root_expires'])})",
            f"head   {r['head']} (height {r['height']}, expires {when(r['head_expires'])})"
            if r["head"]
            else "head   none",
        ]
        if r["draft"]:
            signed = ", ".join(short(k) for k in r["draft_signed_by"])
            lines.append(f"draft  {r['draft']} (signed by {signed}; needs {m['threshold']})")
        if r["draft_root"]:
            signed = ", ".join(short(k) for k in r["draft_root_signed_by"])
            lines.append(
                f"draft root {r['draft_root']} (version {r['draft_root_version']}, "
                f"signed by {signed})"
            )
        lines.append(f"staged {len(r['staged'])} change(s)")
        lines += [f"  {c['action']:<6} {c['key']}" for c in r["staged"]]
        return "\n".join(lines)

    emit(result, as_json, render)
