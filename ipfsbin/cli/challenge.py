"""``ipfsbin challenge``, and the challenge report both it and ``index pull`` print.

The text follows ``guix challenge``: each differing item with every hash
known for it, then how many items were identical, differed, or were
inconclusive.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_challenge"]


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0.0%"


def render_challenge(report: dict[str, Any], *, verbose: bool = False) -> str:
    """The text of a challenge report (its ``to_json`` form): differing items, then a summary.

    ``verbose`` lists the identical and inconclusive items too.
    """
    lines: list[str] = []
    for item in report["items"]:
        verdict = item["verdict"]
        if verdict != "differing" and not verbose:
            continue
        heading = {
            "differing": "contents differ",
            "identical": "contents identical",
            "inconclusive": "inconclusive",
        }[verdict]
        lines.append(f"{item['item']} {heading}:")
        lines.append(f"  build: {item['key']}")
        if item["local"] is not None:
            lines.append(f"  local hash: {item['local']}")
        for builder in item["builders"]:
            lines.append(f"  {builder['builder']}: {builder['sha256']}")
        if not item["builders"]:
            lines.append("  no builder attests this build")
        if item["note"]:
            lines.append(f"  ({item['note']})")
    summary = report["summary"]
    total = summary["analyzed"]
    if lines:
        lines.append("")
    lines.append(f"{total} item{'s were' if total != 1 else ' was'} analyzed:")
    for key, words in (
        ("identical", "were identical"),
        ("differing", "differed"),
        ("inconclusive", "were inconclusive"),
    ):
        lines.append(f"  - {summary[key]} ({_percent(summary[key], total)}) {words}")
    return "\n".join(lines)
