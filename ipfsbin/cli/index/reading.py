"""``ipfsbin index log``, ``show``, ``diff``, ``verify`` and ``export-git``: reading history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ipfsbin.cli.index._common import (
    NameOpt,
    app,
    now,
    session,
    when,
)
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.maintainer import history
from ipfsbin.maintainer.gitexport import export_git
from ipfsbin.maintainer.report import commit_view
from ipfsbin.maintainer.verify import verify_index

# -- reading ------------------------------------------------------------------------------


@app.command()
def log(
    count: Annotated[int | None, typer.Option("-n", help="Show at most N commits.")] = None,
    name: NameOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Commits from the head back, newest first."""
    with session(name) as (workspace, _, store):
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
                f"Date:     {when(r['time'])} (expires {when(r['expires'])})",
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
    with session(name) as (workspace, _, store):
        if what is not None and what.count("/") == 4:
            detail = history.entry_detail(workspace, store, what)
            emit(detail.to_json(), as_json, _render_entry)
            return
        view = commit_view(workspace, store, what or "HEAD", prefix)
    result = view.to_json()

    def render(r: dict[str, Any]) -> str:
        lines = [
            f"commit {r['commit']} (height {r['height']}, {when(r['time'])})",
            f"index  {r['index']}",
            f"    {r['message'] or '(no message)'}",
            "",
            *[ch.line() for ch in view.changes],
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
    with session(name) as (workspace, _, store):
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
    with session(name) as (workspace, _, store):
        report = verify_index(workspace, store, now=now())
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
    with session(name) as (workspace, _, store):
        result = export_git(workspace, store, directory)
    emit(
        result.to_json(),
        as_json,
        lambda r: (
            f"exported {r['exported']} new commit(s) to {r['directory']} "
            f"(branch {r['branch']}, {r['total']} in all, tip {r['tip'][:12]})"
        ),
    )
