"""``ipfsbin index commit``, ``sign`` and ``drop-draft``: signing commits."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ipfsbin.cli.index._common import (
    KeyOpt,
    NameOpt,
    app,
    drop_draft_of,
    now,
    parse_cid,
    session,
)
from ipfsbin.cli.key import key_store
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.config import parse_seconds
from ipfsbin.errors import ConfigError, IndexOperationError
from ipfsbin.kubo import connect
from ipfsbin.kubo.pins import KuboPins
from ipfsbin.maintainer import chain
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.store.base import BlockStore
from ipfsbin.store.kubo import KuboBlockStore

# -- commits ------------------------------------------------------------------------------


@app.command()
def commit(
    message: Annotated[str, typer.Option("-m", "--message", help="Commit message.")],
    key: KeyOpt,
    name: NameOpt = "default",
    lifetime: Annotated[
        str,
        typer.Option(
            "--lifetime", help="How long followers may use this head (e.g. 7d, 12h, 30s)."
        ),
    ] = "7d",
    as_json: JsonOpt = False,
) -> None:
    """Commit the staged changes, signed by one maintainer (a draft until the threshold is met)."""
    try:
        valid_for = parse_seconds(lifetime, "--lifetime")
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint="--lifetime") from exc
    signing = key_store().load(key)
    with session(name) as (workspace, client, store):
        result = chain.commit(
            workspace, store, KuboPins(client), signing, message, now=now(), lifetime=valid_for
        )

    def render(r: dict[str, Any]) -> str:
        signed = f"signed by {len(r['signed_by'])} of {r['threshold']}"
        if r["head"]:
            changes = f"{r['changes']} change(s)"
            return f"head {r['envelope']} (height {r['height']}, {changes}, {signed})"
        return (
            f"draft {r['envelope']} (height {r['height']}, {signed}); co-signers run:\n"
            f"  ipfsbin index sign {r['envelope']} --key NAME"
        )

    emit(result.to_json(), as_json, render)


@app.command()
def sign(
    envelope: Annotated[str, typer.Argument(help="Envelope CID of the commit to co-sign.")],
    key: Annotated[
        str | None,
        typer.Option("--key", help="Local maintainer key that signs (omit to only merge)."),
    ] = None,
    standalone: Annotated[
        bool,
        typer.Option("--standalone", help="Sign without a local index (a co-signer elsewhere)."),
    ] = False,
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Co-sign a commit; when the threshold is met it is verified and becomes the head."""
    cid = parse_cid(envelope, "commit envelope CID")
    signing = None if key is None else key_store().load(key)
    if standalone:
        if signing is None:
            raise IndexOperationError("--standalone needs --key", hint="pass --key NAME")
        with connect() as client:
            remote: BlockStore = KuboBlockStore(client, offline=False)
            result = chain.sign(None, remote, KuboPins(client), cid, signing, now=now())
    else:
        with session(name) as (workspace, client, store):
            result = chain.sign(workspace, store, KuboPins(client), cid, signing, now=now())

    def render(r: dict[str, Any]) -> str:
        state = "head" if r["head"] else ("threshold met" if r["threshold_met"] else "draft")
        return (
            f"{state} {r['envelope']} (height {r['height']}, signed by "
            f"{len(r['signed_by'])} of {r['threshold']})"
        )

    emit(result.to_json(), as_json, render)


@app.command("drop-draft")
def drop_draft(name: NameOpt = "default", as_json: JsonOpt = False) -> None:
    """Forget the draft commit (its staged changes are not restored)."""
    drop_draft_of(name, "draft", as_json, Workspace.drop_draft)
