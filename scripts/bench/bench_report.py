"""What every benchmark writes beside its figures: the machine, the date, and the JSON file."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def machine(note: str) -> dict[str, Any]:
    """Cores, Python, the time of the run, and ``note`` (how loaded the machine was)."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "note": note,
    }


def write_results(out: Path, results: dict[str, Any]) -> None:
    """``results`` as sorted JSON to ``out`` (directories made) and to standard output."""
    text = json.dumps(results, indent=2, sort_keys=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(text)
