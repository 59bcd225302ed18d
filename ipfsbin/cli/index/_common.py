"""What the ``ipfsbin index`` command groups share: the app, options, and small helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from ipfsbin.cli.key import key_store
from ipfsbin.cli.output import emit
from ipfsbin.codec.cid import CID
from ipfsbin.errors import CodecError, IndexOperationError, IpfsbinError
from ipfsbin.kubo import connect
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import KuboPins
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.store.base import BlockStore
from ipfsbin.trust.signing import public_key_of

__all__ = [
    "KeyOpt",
    "NameOpt",
    "app",
    "drop_draft_of",
    "key_id_of",
    "now",
    "parse_cid",
    "session",
    "short",
    "when",
]
app = typer.Typer(
    help="Maintain a signed index: accept builders' attestations, commit, co-sign, audit.",
    no_args_is_help=True,
)

NameOpt = Annotated[
    str, typer.Option("--index", "--name", help="Which local index (default: default).")
]
KeyOpt = Annotated[str, typer.Option("--key", help="Local maintainer key name that signs.")]


def now() -> int:
    return int(time.time())


def when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_cid(text: str, what: str = "CID") -> CID:
    try:
        return CID.from_text(text.strip())
    except CodecError as exc:
        raise IndexOperationError(f"{text!r} is not a {what}: {exc.message}") from exc


@contextmanager
def session(name: str) -> Iterator[tuple[Workspace, KuboClient, BlockStore]]:
    workspace = Workspace.open(name)
    try:
        with connect() as client:
            yield workspace, client, workspace.store(client)
    finally:
        workspace.close()


def key_id_of(value: str) -> str:
    """A key ID as given, or the ID of the local key with that name."""
    if value.startswith("k51"):
        try:
            public_key_of(value)
        except IpfsbinError as exc:
            raise IndexOperationError(f"{value!r} is not a key ID: {exc.message}") from exc
        return value
    return key_store().load(value).key_id


def short(key_id: str) -> str:
    return f"…{key_id[-10:]}"


def drop_draft_of(name: str, what: str, as_json: bool, drop: Callable[[Workspace], Any]) -> None:
    """Forget a draft (commit or root) and unpin its envelope."""
    with session(name) as (workspace, client, _):
        draft = drop(workspace)
        if draft is not None:
            KuboPins(client).unpin(draft.cid)
    emit(
        {"dropped": None if draft is None else str(draft.cid)},
        as_json,
        lambda r: f"dropped {what} {r['dropped']}" if r["dropped"] else f"no {what}",
    )
