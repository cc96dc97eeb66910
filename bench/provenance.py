"""What a benchmark measured: the commit and the reference packages' versions, printed with its figures."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def revision() -> str:
    """The commit measured (``+dirty`` when engine/ has uncommitted changes): the engine changes often."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "engine"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def package_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"
