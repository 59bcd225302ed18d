"""``ipfsbin index``: the maintainer's side of a signed index (init, add, commit, sign, read)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ipfsbin.cli.key import key_store
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.codec.cid import CID
from ipfsbin.errors import CodecError, IndexOperationError, IpfsbinError
from ipfsbin.kubo import connect
from ipfsbin.kubo.client import KuboClient
from ipfsbin.kubo.pins import KuboPins
from ipfsbin.maintainer import chain, curate, history, roots
from ipfsbin.maintainer.gitexport import export_git
from ipfsbin.maintainer.verify import verify_index
from ipfsbin.maintainer.workspace import Workspace
from ipfsbin.store.base import BlockStore
from ipfsbin.store.kubo import KuboBlockStore
from ipfsbin.trust.commit import load_commit_payload
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.signing import public_key_of

__all__ = ["app"]

app = typer.Typer(
    help="Maintain a signed index: accept builders' attestations, commit, co-sign, audit.",
    no_args_is_help=True,
)

NameOpt = Annotated[
    str, typer.Option("--index", "--name", help="Which local index (default: default).")
]
KeyOpt = Annotated[str, typer.Option("--key", help="Local maintainer key name that signs.")]


def _now() -> int:
    return int(time.time())


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cid(text: str, what: str = "CID") -> CID:
    try:
        return CID.from_text(text.strip())
    except CodecError as exc:
        raise IndexOperationError(f"{text!r} is not a {what}: {exc.message}") from exc


@contextmanager
def _session(name: str) -> Iterator[tuple[Workspace, KuboClient, BlockStore]]:
    workspace = Workspace.open(name)
    try:
        with connect() as client:
            yield workspace, client, workspace.store(client)
    finally:
        workspace.close()


def _key_id(value: str) -> str:
    """A key ID as given, or the ID of the local key with that name."""
    if value.startswith("k51"):
        try:
            public_key_of(value)
        except IpfsbinError as exc:
            raise IndexOperationError(f"{value!r} is not a key ID: {exc.message}") from exc
        return value
    return key_store().load(value).key_id


def _short(key_id: str) -> str:
    return f"…{key_id[-10:]}"


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
            maintainers=[_key_id(m) for m in maintainer or ()],
            threshold=threshold,
            publishers=None if publisher is None else [_key_id(p) for p in publisher],
            builders=None if builder is None else [_key_id(b) for b in builder],
            expires_days=expires,
            now=_now(),
        )

    def render(r: dict[str, Any]) -> str:
        lines = [
            f"index {r['name']}: trust root {r['root']} (version {r['version']}, "
            f"expires {_when(r['expires'])})",
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
    parsed = [_cid(c) for c in cids]
    with _session(name) as (workspace, client, store):
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
                f"by {', '.join(_short(b) for b in builders) or 'no builder'}{note}"
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
    with _session(name) as (workspace, _, store):
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
    workspace = Workspace.open(name)
    try:
        root = workspace.signed_root.root
        head = workspace.head_commit
        draft = workspace.draft
        draft_root = workspace.draft_root
        result = {
            "name": workspace.name,
            "root": str(workspace.root),
            "root_version": root.version,
            "root_expires": root.expires,
            "maintainers": {
                "keys": list(root.maintainers.keys),
                "threshold": root.maintainers.threshold,
            },
            "builders": list(root.builders.keys),
            "publishers": list(root.publishers.keys),
            "head": None if head is None else str(head.cid),
            "height": None if head is None else head.height,
            "head_expires": None if head is None else head.commit.expires,
            "draft": None if draft is None else str(draft.cid),
            "draft_signed_by": [] if draft is None else list(draft.signers),
            "roots": [str(cid) for cid in workspace.root_envelopes()],
            "draft_root": None if draft_root is None else str(draft_root.cid),
            "draft_root_version": None if draft_root is None else draft_root.version,
            "draft_root_signed_by": [] if draft_root is None else list(draft_root.signers),
            "staged": [
                {"key": c.key, "action": c.action, "state": c.entry.state}
                for c in workspace.staged()
            ],
            "local_keys": dict(workspace.key_names),
            "publisher_key_name": workspace.publisher_key_name,
        }
    finally:
        workspace.close()

    def render(r: dict[str, Any]) -> str:
        m = r["maintainers"]
        lines = [
            f"index {r['name']}: root {r['root']} (version {r['root_version']}, "
            f"{m['threshold']} of {len(m['keys'])} maintainers, "
            f"expires {_when(r['root_expires'])})",
            f"head   {r['head']} (height {r['height']}, expires {_when(r['head_expires'])})"
            if r["head"]
            else "head   none",
        ]
        if r["draft"]:
            signed = ", ".join(_short(k) for k in r["draft_signed_by"])
            lines.append(f"draft  {r['draft']} (signed by {signed}; needs {m['threshold']})")
        if r["draft_root"]:
            signed = ", ".join(_short(k) for k in r["draft_root_signed_by"])
            lines.append(
                f"draft root {r['draft_root']} (version {r['draft_root_version']}, "
                f"signed by {signed})"
            )
        lines.append(f"staged {len(r['staged'])} change(s)")
        lines += [f"  {c['action']:<6} {c['key']}" for c in r["staged"]]
        return "\n".join(lines)

    emit(result, as_json, render)


# -- commits ------------------------------------------------------------------------------


@app.command()
def commit(
    message: Annotated[str, typer.Option("-m", "--message", help="Commit message.")],
    key: KeyOpt,
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Commit the staged changes, signed by one maintainer (a draft until the threshold is met)."""
    signing = key_store().load(key)
    with _session(name) as (workspace, client, store):
        result = chain.commit(workspace, store, KuboPins(client), signing, message, now=_now())

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
    cid = _cid(envelope, "commit envelope CID")
    signing = None if key is None else key_store().load(key)
    if standalone:
        if signing is None:
            raise IndexOperationError("--standalone needs --key", hint="pass --key NAME")
        with connect() as client:
            remote: BlockStore = KuboBlockStore(client, offline=False)
            result = chain.sign(None, remote, KuboPins(client), cid, signing, now=_now())
    else:
        with _session(name) as (workspace, client, store):
            result = chain.sign(workspace, store, KuboPins(client), cid, signing, now=_now())

    def render(r: dict[str, Any]) -> str:
        state = "head" if r["head"] else ("threshold met" if r["threshold_met"] else "draft")
        return (
            f"{state} {r['envelope']} (height {r['height']}, signed by "
            f"{len(r['signed_by'])} of {r['threshold']})"
        )

    emit(result.to_json(), as_json, render)


def _drop(name: str, what: str, as_json: bool, drop: Callable[[Workspace], Any]) -> None:
    """Forget a draft (commit or root) and unpin its envelope."""
    with _session(name) as (workspace, client, _):
        draft = drop(workspace)
        if draft is not None:
            KuboPins(client).unpin(draft.cid)
    emit(
        {"dropped": None if draft is None else str(draft.cid)},
        as_json,
        lambda r: f"dropped {what} {r['dropped']}" if r["dropped"] else f"no {what}",
    )


@app.command("drop-draft")
def drop_draft(name: NameOpt = "default", as_json: JsonOpt = False) -> None:
    """Forget the draft commit (its staged changes are not restored)."""
    _drop(name, "draft", as_json, Workspace.drop_draft)


# -- trust root rotation ------------------------------------------------------------------


def _ids(values: list[str] | None) -> tuple[str, ...]:
    return tuple(_key_id(v) for v in values or ())


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
    with _session(name) as (workspace, client, store):
        result = roots.rotate_root(workspace, store, KuboPins(client), keys, change, now=_now())
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
    cid = _cid(envelope, "trust root envelope CID")
    store_keys = key_store()
    keys = [(k, store_keys.load(k)) for k in key or ()]
    if standalone:
        if not keys:
            raise IndexOperationError("--standalone needs --key", hint="pass --key NAME")
        with connect() as client:
            remote: BlockStore = KuboBlockStore(client, offline=False)
            result = roots.sign_root(None, remote, KuboPins(client), cid, keys, now=_now())
    else:
        with _session(name) as (workspace, client, store):
            result = roots.sign_root(workspace, store, KuboPins(client), cid, keys, now=_now())
    emit(result.to_json(), as_json, _render_root)


@app.command("drop-draft-root")
def drop_draft_root(name: NameOpt = "default", as_json: JsonOpt = False) -> None:
    """Forget the trust root version waiting for co-signatures."""
    _drop(name, "draft root", as_json, Workspace.drop_draft_root)


# -- reading ------------------------------------------------------------------------------


@app.command()
def log(
    count: Annotated[int | None, typer.Option("-n", help="Show at most N commits.")] = None,
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Commits from the head back, newest first."""
    with _session(name) as (workspace, _, store):
        entries = history.log(workspace, store, limit=count)

    def render(rows: list[dict[str, Any]]) -> str:
        out = []
        for r in rows:
            signers = r["signed_by"]
            by = "unknown" if signers is None else ", ".join(signers) or "nobody"
            out += [
                f"commit {r['commit']}",
                f"Envelope: {r['envelope'] or '(not recorded here)'}",
                f"Height:   {r['height']}",
                f"Date:     {_when(r['time'])} (expires {_when(r['expires'])})",
                f"Signed:   {by}",
                f"Changes:  +{r['added']} ~{r['changed']} -{r['removed']}",
                "",
                *(f"    {line}" for line in (r["message"] or "(no message)").splitlines()),
                "",
            ]
        return "\n".join(out)

    emit([e.to_json() for e in entries], as_json, render)


@app.command()
def show(
    what: Annotated[
        str | None, typer.Argument(help="An index key, or a commit (HEAD, HEAD~N, DRAFT, CID).")
    ] = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="List only keys starting with this.")
    ] = "",
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """An entry (with the reproducibility view), or a commit with its entries and changes."""
    with _session(name) as (workspace, _, store):
        if what is not None and what.count("/") == 4:
            detail = history.entry_detail(workspace, store, what)
            emit(detail.to_json(), as_json, _render_entry)
            return
        ref = history.resolve(workspace, store, what or "HEAD")
        parent = load_commit_payload(store, ref.commit.parents[0]) if ref.commit.parents else None
        changes = history.diff_commits(store, parent, ref.commit)
        listed = [
            {
                "key": key,
                "state": entry.state,
                "reason": entry.reason,
                "manifest": str(entry.manifest),
                "attestations": len(entry.attestations),
            }
            for key, entry in history.entries(store, ref.commit, prefix)
        ]
    c = ref.commit
    result = {
        "commit": str(ref.commit_id),
        "envelope": None if ref.envelope is None else str(ref.envelope),
        "signed_by": None if ref.signed is None else list(ref.signed.signers),
        "height": c.height,
        "time": c.time,
        "expires": c.expires,
        "message": c.message,
        "index": str(c.index),
        "changes": [ch.to_json() for ch in changes],
        "entries": listed,
    }

    def render(r: dict[str, Any]) -> str:
        lines = [
            f"commit {r['commit']} (height {r['height']}, {_when(r['time'])})",
            f"index  {r['index']}",
            f"    {r['message'] or '(no message)'}",
            "",
            *[ch.line() for ch in changes],
            "",
            f"{len(r['entries'])} entries:",
        ]
        lines += [
            f"  {e['state']:<6} {e['key']}" + (f"  ({e['reason']})" if e["reason"] else "")
            for e in r["entries"]
        ]
        return "\n".join(lines)

    emit(result, as_json, render)


def _render_entry(r: dict[str, Any]) -> str:
    repro = r["reproducibility"]
    lines = [
        f"entry  {r['key']}" + ("  (staged)" if r["staged"] else ""),
        f"cpv    {r['cpv']}",
        f"state  {r['state']}" + (f" ({r['reason']})" if r["reason"] else ""),
        f"manifest {r['manifest']}",
        f"binpkg {r['binpkg']} ({r['format']}, {r['size']} bytes)",
        f"sha256 {r['sha256']}",
        f"reproducibility: {repro['summary']}",
    ]
    for outcome in repro["outcomes"]:
        mark = "=" if outcome["matches_manifest"] else "!"
        lines.append(
            f"  {mark} sha256 {outcome['sha256'][:16]}… size {outcome['size']}: "
            + (", ".join(outcome["builders"]) or "(no valid builder signature)")
        )
    return "\n".join(lines)


@app.command("diff")
def diff_cmd(
    old: Annotated[str, typer.Argument(help="Older commit (HEAD~1, a CID …).")],
    new: Annotated[str, typer.Argument(help="Newer commit (default HEAD).")] = "HEAD",
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Entries added (+), removed (-) and changed (~) between two commits."""
    with _session(name) as (workspace, _, store):
        a = history.resolve(workspace, store, old)
        b = history.resolve(workspace, store, new)
        changes = history.diff_commits(store, a.commit, b.commit)
    emit(
        [c.to_json() for c in changes],
        as_json,
        lambda _: "\n".join(c.line() for c in changes) or "no changes",
    )


@app.command()
def verify(name: NameOpt = "default", as_json: JsonOpt = False) -> None:
    """Re-verify the whole chain from the trust root to the head, as a follower would."""
    with _session(name) as (workspace, _, store):
        report = verify_index(workspace, store, now=_now())
    emit(report.to_json(), as_json, lambda r: str(r["verdict"]))
    if not report.ok:
        raise typer.Exit(1)


@app.command("export-git")
def export_git_cmd(
    directory: Annotated[Path, typer.Argument(help="Git repository to write (made if absent).")],
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Mirror the commit chain into git: one commit per index commit, one file per entry."""
    with _session(name) as (workspace, _, store):
        result = export_git(workspace, store, directory)
    emit(
        result.to_json(),
        as_json,
        lambda r: (
            f"exported {r['exported']} new commit(s) to {r['directory']} "
            f"(branch {r['branch']}, {r['total']} in all, tip {r['tip'][:12]})"
        ),
    )
