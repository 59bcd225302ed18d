"""How much could real make.conf settings share? Each corpus line as builder and as host.

Over ``tests/data/makeconf/cflags.tsv`` (real CFLAGS with their sources),
every line that normalizes is taken as a builder (CFLAGS = CXXFLAGS = the
line, one package, compiler and libc versions held equal) and as a host whose
CPU has exactly the features its own flags enable. For every ordered pair of
different lines and every sharing policy it counts the pairs the predicate
accepts, the builders usable per host (median, 10th percentile, hosts with
none), the safety upper bound (pairs an independent check against the real
compilers finds safe: ``scripts/bench/sharing_audit.py``), and the pairs a
policy accepts that the check finds unsafe (must be 0).

Today's predicate (before optimization settings became a preference) is
measured in the same run from a checkout of ``--baseline-ref`` (default: the
commit before the split), in a subprocess, so the ratio to it is honest.

    .venv/bin/python scripts/bench/sharing.py [--out bench-results/sharing.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "makeconf" / "cflags.tsv"
CP = "dev-libs/libfoo"
BASELINE_REF = "2fc746f"
"""main before optimization settings became a preference (issue 17)."""


def rows() -> list[tuple[str, str, str]]:
    return [
        (parts[0], parts[1], parts[2])
        for line in CORPUS.read_text().splitlines()
        if line and not line.startswith("#")
        for parts in [line.split("\t")]
    ]


def normalized() -> tuple[list[tuple[int, Any, Any]], Counter[str]]:
    """(row index, Package, HostProfile) of every line that normalizes; why the others do not."""
    import archspec.cpu

    from ipfsbin.descriptor import (
        BuildFacts,
        HostProfile,
        UseConfig,
        chost_family,
        normalize,
    )
    from ipfsbin.errors import DescriptorError

    here = archspec.cpu.host()
    found: list[tuple[int, Any, Any]] = []
    refused: Counter[str] = Counter()
    for index, (source, chost, flags) in enumerate(rows()):
        compiler = "clang" if "(clang" in source else "gcc"
        try:
            family = chost_family(chost)
            facts = BuildFacts(
                chost=chost, arch="-", profile="-", libc="glibc", libc_version="2.39",
                compiler=compiler, compiler_version="13.2.1", cflags=flags, cxxflags=flags,
                ldflags="", cpv=f"{CP}-1.0", slot="0", repository="gentoo", eapi="8",
                use="ssl", iuse="ssl", iuse_effective="ssl",
            )  # fmt: skip
            # -march=native is resolved as on the builder itself (as the corpus test does).
            target = str(here.name) if family == here.family.name else None
            package = normalize(facts, host_target=target)
        except DescriptorError as exc:
            refused[exc.message.split(":")[0][:70]] += 1
            continue
        platform_ = package.platform
        host = HostProfile(
            chost=chost,
            cpu_features=frozenset(platform_.cflags.features)
            | frozenset(platform_.effective_cxxflags.features),
            libc="glibc",
            libc_version="2.39",
            compiler=compiler,
            compiler_version="13.2.1",
            cflags=platform_.cflags,
            cxxflags=platform_.cxxflags,
            use={CP: UseConfig(use=frozenset({"ssl"}), iuse=frozenset({"ssl"}))},
            runtime=frozenset(platform_.runtime),
        )
        found.append((index, package, host))
    return found, refused


def _percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


def summary(accepted: dict[int, set[int]], lines: list[int]) -> dict[str, Any]:
    """Pairs shared and builders usable per host, from host -> accepted builders."""
    per_host = [len(accepted.get(h, set()) - {h}) for h in lines]
    pairs = len(lines) * (len(lines) - 1)
    chosts = Counter(rows()[i][1] for i in lines)
    same_chost = sum(n * (n - 1) for n in chosts.values())
    shared = sum(per_host)
    return {
        "pairs_shared": shared,
        "fraction": round(shared / pairs, 4) if pairs else 0.0,
        "fraction_of_same_chost_pairs": round(shared / same_chost, 4) if same_chost else 0.0,
        "usable_builders_median": statistics.median(per_host) if per_host else 0,
        "usable_builders_p10": _percentile(per_host, 0.10) if per_host else 0,
        "hosts_with_no_other_builder": sum(1 for n in per_host if n == 0),
    }


def today() -> dict[str, Any]:
    """Today's predicate (``Compatibility.ok``) on this checkout: pairs by host."""
    lines, refused = normalized()
    from ipfsbin.descriptor import check_compatible

    accepted: dict[int, set[int]] = {}
    axes: Counter[str] = Counter()
    for h, _, host in lines:
        for b, package, _ in lines:
            if b == h:
                continue
            result = check_compatible(package, host)
            if result.ok:
                accepted.setdefault(h, set()).add(b)
            for axis in {m.axis for m in result.mismatches}:
                axes[axis] += 1
    return {
        "lines": len(lines),
        "accepted": {str(h): sorted(bs) for h, bs in accepted.items()},
        "refusals_by_axis": dict(axes.most_common()),
        "not_normalized": dict(refused.most_common()),
    }


def baseline(ref: str) -> dict[str, Any]:
    """:func:`today` run on ``ref``'s package in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(  # noqa: S603 - git with fixed arguments
            ["git", "-C", str(REPO), "archive", ref, "ipfsbin"],  # noqa: S607
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)  # noqa: S603,S607
        env = {**os.environ, "PYTHONPATH": tmp}
        done = subprocess.run(  # noqa: S603 - this script, in today's mode
            [sys.executable, __file__, "--today"], capture_output=True, text=True, env=env, cwd=tmp,
            check=True,
        )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def policies() -> dict[str, Any]:
    from ipfsbin.descriptor import EXACT, SAME_ISA, SharingPolicy

    return {
        "exact": EXACT,
        "opt": SharingPolicy(may_differ=frozenset({"opt"})),
        "opt+flags": SharingPolicy(may_differ=frozenset({"opt", "flags"})),
        "same-isa": SAME_ISA,
    }


def measure(progress: Callable[[str], None]) -> dict[str, Any]:
    from ipfsbin.descriptor import CompilerProbe, check_compatible

    audit = importlib.import_module("sharing_audit")  # beside this script
    build_facts, unsafe_reasons = audit.build_facts, audit.unsafe_reasons

    lines, refused = normalized()
    indexes = [i for i, _, _ in lines]
    corpus = rows()
    probe = CompilerProbe()
    progress(f"{len(lines)} lines normalize; asking the compilers for the audit")
    facts = {}
    for i, package, _ in lines:
        source, chost, flags = corpus[i]
        facts[i] = build_facts(probe, chost, flags, package.platform.compiler)
    named = policies()
    accepted: dict[str, dict[int, set[int]]] = {name: {} for name in named}
    safe_pairs: dict[int, set[int]] = {}
    unsafe: dict[str, list[dict[str, Any]]] = {name: [] for name in named}
    axes: Counter[str] = Counter()
    beyond: Counter[str] = Counter()
    progress(f"checking {len(lines) * (len(lines) - 1)} pairs")
    for h, _, host in lines:
        for b, package, _ in lines:
            if b == h:
                continue
            result = check_compatible(package, host)
            for mismatch in result.mismatches:
                axes[f"{mismatch.axis}/{mismatch.kind}"] += 1
            reasons = unsafe_reasons(facts[b], facts[h], host.cpu_features)
            if not reasons:
                safe_pairs.setdefault(h, set()).add(b)
            for name, policy in named.items():
                if not result.accepted(policy):
                    continue
                accepted[name].setdefault(h, set()).add(b)
                if reasons:
                    unsafe[name].append(
                        {"builder": corpus[b][2], "host": corpus[h][2], "why": reasons}
                    )
            if not reasons and not result.safe:
                for mismatch in result.mismatches:
                    if mismatch.kind == "safety":
                        beyond[f"{mismatch.axis}: {mismatch.reason}"] += 1
    bound = summary(safe_pairs, indexes)
    figures: dict[str, Any] = {}
    for name in named:
        figures[name] = summary(accepted[name], indexes)
        figures[name]["of_safety_bound"] = (
            round(figures[name]["pairs_shared"] / bound["pairs_shared"], 4)
            if bound["pairs_shared"]
            else 0.0
        )
        figures[name]["unsafe"] = len(unsafe[name])
        figures[name]["unsafe_by_reason"] = dict(
            Counter(r.split(" ")[0] for u in unsafe[name] for r in u["why"]).most_common()
        )
        figures[name]["unsafe_examples"] = unsafe[name][:5]
    return {
        "lines": len(lines),
        "indexes": indexes,
        "not_normalized": dict(refused.most_common()),
        "policies": figures,
        "safety_bound": bound,
        "refused_within_bound": dict(beyond.most_common(25)),
        "mismatches_by_axis_and_kind": dict(sorted(axes.items())),
        "accepted": {
            name: {str(h): sorted(v) for h, v in by_host.items()}
            for name, by_host in accepted.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench-results" / "sharing.json")
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--today", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip today's predicate (while iterating)"
    )
    args = parser.parse_args()
    if args.today:
        print(json.dumps(today()))
        return

    def progress(text: str) -> None:
        print(f"sharing: {text}", file=sys.stderr, flush=True)

    started = time.time()
    if args.no_baseline:
        before: dict[str, Any] = {"lines": -1, "accepted": {}, "refusals_by_axis": {}}
    else:
        progress(f"today's predicate from {args.baseline_ref} (subprocess)")
        before = baseline(args.baseline_ref)
    now = measure(progress)
    indexes = now.pop("indexes")
    accepted = now.pop("accepted")
    before_accepted = {int(h): set(bs) for h, bs in before["accepted"].items()}
    figures = summary(before_accepted, indexes) if before["lines"] == now["lines"] else {}
    lost = sum(
        1
        for h in indexes
        for b in before_accepted.get(h, set())
        if b not in set(accepted["exact"].get(str(h), []))
    )
    result = {
        "benchmark": "sharing",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "shared by parallel work; figures are counts, not times",
        },
        "corpus": {
            "file": str(CORPUS.relative_to(REPO)),
            "rows": len(rows()),
            "normalized": now["lines"],
            "not_normalized": now["not_normalized"],
            "pairs": now["lines"] * (now["lines"] - 1),
            "held_equal": "compiler and libc versions, USE; CXXFLAGS = CFLAGS; "
            "-march=native resolved as this machine; host CPU = its own flags' features",
        },
        "baseline": {
            "ref": args.baseline_ref,
            **figures,
            "refusals_by_axis": before["refusals_by_axis"],
            "pairs_exact_loses": lost,
        },
        "safety_bound": now["safety_bound"],
        "refused_within_bound": now["refused_within_bound"],
        "policies": now["policies"],
        "ratios": {
            name: {
                "to_baseline": round(p["pairs_shared"] / figures["pairs_shared"], 3)
                if figures.get("pairs_shared")
                else None,
                "of_safety_bound": p["of_safety_bound"],
            }
            for name, p in now["policies"].items()
        },
        "mismatches_by_axis_and_kind": now["mismatches_by_axis_and_kind"],
        "seconds": round(time.time() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    progress(f"wrote {args.out}")
    print(json.dumps({k: result[k] for k in ("baseline", "safety_bound", "ratios")}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
