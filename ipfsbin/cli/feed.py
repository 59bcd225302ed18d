"""``ipfsbin feed``: a builder's append-only feed of attestations (``schema/feed.md``)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from ipfsbin.builder.feed import Feed, publish_feed
from ipfsbin.cli.key import signing_key
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.codec.cid import CID
from ipfsbin.errors import CodecError, FeedError
from ipfsbin.index.entry import IndexEntry
from ipfsbin.index.prolly import ProllyTree
from ipfsbin.kubo import connect
from ipfsbin.store.base import BlockStore
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.subscribe.feeds import FeedMarks, read_feed
from ipfsbin.trust.feed import feed_entry

app = typer.Typer(
    help="A builder's signed, append-only feed of attestations under its IPNS name.",
    no_args_is_help=True,
)

KeyOpt = Annotated[
    str | None, typer.Option("--key", help="Builder key name (default: the only key there is).")
]
SHOW_SCOPE = "show"


def _cids(texts: list[str]) -> list[CID]:
    parsed = []
    for text in texts:
        try:
            parsed.append(CID.from_text(text.strip()))
        except CodecError as exc:
            raise FeedError(f"{text!r} is not a CID: {exc.message}") from exc
    return parsed


def _render_head(r: dict[str, Any]) -> str:
    lines = [f"feed {r['name']}: height {r['height']}, {r['entries']} entries, head {r['head']}"]
    lines += [f"  added {e['cpv']}  sha256 {e['sha256'][:16]}…  {e['key']}" for e in r["added"]]
    return "\n".join(lines)


@app.command()
def append(
    attestations: Annotated[
        list[str], typer.Argument(help="Attestation CIDs (`ipfsbin publish` prints them).")
    ],
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add this builder's attestations to its feed (one commit; ones already there are skipped)."""
    cids = _cids(attestations)
    with connect() as client, Feed.open(client, signing_key(key)) as feed:
        head = feed.append(cids)
    emit(head.to_json(), as_json, _render_head)


@app.command()
def publish(
    key: KeyOpt = None,
    allow_offline: Annotated[
        bool,
        typer.Option("--allow-offline", help="Publish even when no peer takes the record."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Point the builder key's IPNS name at the feed's head (sequence = height)."""
    with connect() as client, Feed.open(client, signing_key(key)) as feed:
        record = publish_feed(client, feed, allow_offline=allow_offline)
    emit(
        record.to_json(),
        as_json,
        lambda r: f"published {r['name']} -> {r['value']} (sequence {r['sequence']})",
    )


def _entries(store: BlockStore, index: CID, name: str) -> list[dict[str, Any]]:
    rows = []
    for _, value in ProllyTree(store).items(index):
        (attestation,) = IndexEntry.from_dag(value).attestations
        rows.append(feed_entry(store, attestation, name).to_json())
    return rows


@app.command()
def show(
    name: Annotated[
        str | None,
        typer.Argument(help="A feed's IPNS name (k51…); default: this builder's own feed."),
    ] = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a feed's entries; a remote feed is verified first.

    Verified: signatures, and that the feed only grew since this host last
    looked (a feed that dropped or changed an entry is refused).
    """
    with connect() as client:
        if name is None:
            with Feed.open(client, signing_key(key)) as feed:
                signed = feed.head_commit()
                if signed is None:
                    raise FeedError(
                        f"the feed of {feed.name} has no commit yet",
                        hint="append attestations with `ipfsbin feed append CID…`",
                    )
                feed_name, store = feed.name, feed.store
        else:
            marks = FeedMarks()
            update = read_feed(
                client, name, since=marks.get(SHOW_SCOPE, name), now=int(time.time())
            )
            marks.record(SHOW_SCOPE, update)
            signed, feed_name = update.head, update.name
            store = KuboBlockStore(client, offline=False)
        result = {
            "name": feed_name,
            "head": str(signed.cid),
            "height": signed.height,
            "entries": _entries(store, signed.commit.index, feed_name),
        }

    def render(r: dict[str, Any]) -> str:
        lines = [
            f"feed {r['name']}: height {r['height']}, {len(r['entries'])} entries, head {r['head']}"
        ]
        lines += [
            f"  {e['cpv']}  sha256 {e['sha256'][:16]}…  {e['attestation']}" for e in r["entries"]
        ]
        return "\n".join(lines)

    emit(result, as_json, render)
