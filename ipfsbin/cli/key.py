"""``ipfsbin key``: the ed25519 signing keys this host signs attestations with."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ipfsbin import paths
from ipfsbin.cli.output import JsonOpt, emit
from ipfsbin.errors import KeyStoreError
from ipfsbin.trust.keys import KeyStore, SigningKey

app = typer.Typer(help="Create and list the signing keys kept by ipfsbin (one PEM file each).")

NameArg = Annotated[str, typer.Argument(help="Key name (letters, digits, '.', '_', '-').")]


def key_store() -> KeyStore:
    """The key store every command uses: ``<data dir>/keys``."""
    return KeyStore(paths.data_dir() / "keys")


def signing_key(name: str | None) -> SigningKey:
    """The key ``name``, or the only key there is; ``KeyStoreError`` when that is ambiguous."""
    store = key_store()
    if name is not None:
        return store.load(name)
    names = store.names()
    if len(names) == 1:
        return store.load(names[0])
    if not names:
        raise KeyStoreError(
            f"no signing key in {store.directory}",
            hint="create one with `ipfsbin key gen NAME`",
        )
    raise KeyStoreError(
        f"several signing keys ({', '.join(names)}); which one should sign?",
        hint="choose one with --key NAME",
    )


def _info(store: KeyStore, name: str) -> dict[str, Any]:
    key = store.load(name)
    return {"name": name, "key_id": key.key_id, "path": str(store.directory / f"{name}.pem")}


@app.command()
def gen(name: NameArg, as_json: JsonOpt = False) -> None:
    """Create a new key and print its key ID (also its IPNS name)."""
    store = key_store()
    key = store.generate(name)
    result = {"name": name, "key_id": key.key_id, "path": str(store.directory / f"{name}.pem")}
    emit(result, as_json, lambda r: str(r["key_id"]))


@app.command("list")
def list_keys(as_json: JsonOpt = False) -> None:
    """List the keys: name and key ID."""
    store = key_store()
    result = [_info(store, name) for name in store.names()]

    def render(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "no keys (create one with `ipfsbin key gen NAME`)"
        width = max(len(r["name"]) for r in rows)
        return "\n".join(f"{r['name']:<{width}}  {r['key_id']}" for r in rows)

    emit(result, as_json, render)


@app.command()
def show(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show one key: key ID and the file it is kept in."""
    result = _info(key_store(), name)
    emit(
        result,
        as_json,
        lambda r: f"name:   {r['name']}\nkey ID: {r['key_id']}\npath:   {r['path']}",
    )
