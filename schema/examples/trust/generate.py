"""Write the trust golden vectors (run from the repository root).

    python schema/examples/trust/generate.py          # rewrite the files
    python schema/examples/trust/generate.py --check  # exit 1 if they differ

Every byte is fixed: keys come from constant seeds and ed25519 signatures are
deterministic, so the same code always writes the same blocks and CIDs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ipfsbin.codec import dagcbor
from ipfsbin.index.changeset import ChangesetPart, encode_part
from ipfsbin.trust.commit import SignedCommit, make_commit, sign_commit
from ipfsbin.trust.keys import SigningKey
from ipfsbin.trust.root import SignedRoot, make_root, sign_root

HERE = Path(__file__).resolve().parent

SEEDS = {"A": bytes(32), "B": bytes([1]) * 32, "C": bytes([2]) * 32, "D": bytes([3]) * 32}
ROOT_EXPIRES = 1798761600  # 2027-01-01T00:00:00Z
T1 = 1767225600  # 2026-01-01T00:00:00Z
T2 = T1 + 86400
NOW = T2 + 3600  # the time the examples are verified at
INDEX = dagcbor.encode_block({})[0]  # stands in for a prolly-tree root
INDEX_3 = dagcbor.encode_block({"n": 3})[0]  # stands in for the root after commit-3's changes
T3 = T2 + 1800
T4 = T3 + 600


def keys() -> dict[str, SigningKey]:
    return {name: SigningKey.from_seed(seed) for name, seed in SEEDS.items()}


def build() -> tuple[dict[str, bytes], dict[str, Any]]:
    """The vector files (name -> bytes) and the manifest that describes them."""
    k = keys()
    pub = {name: key.public_key for name, key in k.items()}
    root_v1 = sign_root(
        make_root(
            expires=ROOT_EXPIRES,
            maintainers=[pub["A"], pub["B"], pub["C"]],
            maintainers_threshold=2,
            publishers=[pub["A"]],
            builders=[pub["D"]],
        ),
        k["A"],
        k["B"],
    )
    root_v2 = sign_root(
        make_root(
            expires=ROOT_EXPIRES,
            maintainers=[pub["B"], pub["C"], pub["D"]],
            maintainers_threshold=2,
            publishers=[pub["B"]],
            builders=[pub["D"]],
            previous=root_v1,
        ),
        k["A"],
        k["B"],
        k["C"],
    )
    commit_1 = sign_commit(
        make_commit(index=INDEX, root=root_v1, time=T1, message="first index"), k["A"], k["B"]
    )
    commit_2_a = sign_commit(
        make_commit(index=INDEX, root=root_v1, time=T2, parents=[commit_1], message="second"),
        k["A"],
    )
    commit_2_ab = sign_commit(commit_2_a, k["B"])
    forged_sigs = list(commit_2_ab.signatures)
    flipped = bytes([forged_sigs[-1].sig[0] ^ 1]) + forged_sigs[-1].sig[1:]
    forged_sigs[-1] = type(forged_sigs[-1])(key=forged_sigs[-1].key, sig=flipped)
    commit_2_forged = SignedCommit.create(commit_2_ab.commit, forged_sigs)
    changeset = ChangesetPart(
        base=INDEX,
        upserts=(
            ("amd64-k8/app-misc/hello/2.12/d8f1c2a4b", {"entry": "new build"}),
            ("amd64-k8/dev-libs/libfoo/1.0/d03a5e9c1", {"entry": "yanked now"}),
        ),
        deletes=("amd64-k8/dev-libs/libfoo/0.9/d77b02e44",),
    )
    changeset_cid, changeset_block = encode_part(changeset)
    commit_3 = sign_commit(
        make_commit(
            index=INDEX_3,
            root=root_v1,
            time=T3,
            parents=[commit_2_ab],
            message="third",
            changes=[changeset_cid],
        ),
        k["A"],
        k["B"],
    )
    # the same commit, its envelope listing root v1's envelope (what a key-pinned follower needs)
    commit_3_roots = sign_commit(commit_3, roots=[root_v1.cid])
    # under root v2 (A revoked), listing the whole root chain so followers take in the rotation
    commit_4 = sign_commit(
        make_commit(
            index=INDEX_3, root=root_v2, time=T4, parents=[commit_3], message="fourth, under v2"
        ),
        k["B"],
        k["C"],
        roots=[root_v1.cid, root_v2.cid],
    )

    objects: list[tuple[str, SignedRoot | SignedCommit, str, str]] = [
        ("root-v1", root_v1, "root-v1", "ok"),
        ("root-v2", root_v2, "root-v1", "ok"),
        ("commit-1", commit_1, "root-v1", "ok"),
        ("commit-2-a", commit_2_a, "root-v1", "ThresholdError"),
        ("commit-2-ab", commit_2_ab, "root-v1", "ok"),
        ("commit-2-forged", commit_2_forged, "root-v1", "SignatureError"),
        ("commit-3", commit_3, "root-v1", "ok"),
        ("commit-3-roots", commit_3_roots, "root-v1", "ok"),
        ("commit-4", commit_4, "root-v2", "ok"),
    ]
    files: dict[str, bytes] = {}
    manifest: dict[str, Any] = {
        "keys": {
            name: {"seed": SEEDS[name].hex(), "key_id": key.key_id} for name, key in k.items()
        },
        "index": str(INDEX),
        "now": NOW,
        "objects": [],
        "changesets": [
            {
                "file": f"changeset-{changeset_cid}.cbor",
                "cid": str(changeset_cid),
                "base": str(INDEX),
                "linked_by": "commit-3",
            }
        ],
    }
    files[f"changeset-{changeset_cid}.cbor"] = changeset_block
    for name, signed, checked_by, expect in objects:
        kind = "root" if isinstance(signed, SignedRoot) else "commit"
        payload_file = f"{kind}-{signed.payload_id}.payload.cbor"
        files[f"{name}.envelope.cbor"] = signed.block
        files[payload_file] = signed.payload_block
        manifest["objects"].append(
            {
                "name": name,
                "kind": kind,
                "envelope": f"{name}.envelope.cbor",
                "envelope_cid": str(signed.cid),
                "payload": payload_file,
                "payload_cid": str(signed.payload_id),
                "signers": [s.key for s in signed.signatures],
                "maintainers_of": checked_by,
                "expect": expect,
            }
        )
        if isinstance(signed, SignedCommit) and signed.roots:
            manifest["objects"][-1]["roots"] = [str(r) for r in signed.roots]
    files["vectors.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files, manifest


def main(argv: list[str]) -> int:
    files, _ = build()
    if "--check" in argv:
        stale = [
            n
            for n, data in files.items()
            if not (HERE / n).is_file() or (HERE / n).read_bytes() != data
        ]
        for name in stale:
            print(f"{name} differs from what generate.py writes", file=sys.stderr)
        return 1 if stale else 0
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
