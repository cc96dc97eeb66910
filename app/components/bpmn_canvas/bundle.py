"""Where the canvas bundle lives and what it was built from.

The bundle (``static/``) is committed, so the app needs no npm. ``make canvas`` rebuilds it from
``frontend/`` and writes ``static/SOURCE_HASH``, a SHA-256 over the lockfile, package.json, the build script
and every file under ``frontend/src`` (the same list and digest as ``frontend/build.mjs``); a test compares it
with :func:`source_hash` so a bundle that is stale against its sources fails the suite.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRONTEND = HERE / "frontend"
STATIC = HERE / "static"


def sources() -> list[str]:
    """The bundle's inputs, relative to ``frontend/``, in the order the digest reads them."""
    files = ["build.mjs", "package-lock.json", "package.json"]
    files += [f"src/{p.name}" for p in sorted((FRONTEND / "src").iterdir(), key=lambda p: p.name) if p.is_file()]
    return files


def source_hash() -> str:
    """SHA-256 (hex) of the bundle's inputs, as ``frontend/build.mjs`` computes it."""
    digest = hashlib.sha256()
    for name in sources():
        digest.update(f"{name}\0".encode())
        digest.update((FRONTEND / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def recorded_hash() -> str | None:
    """The hash written beside the bundle when it was built (None when no bundle is there)."""
    path = STATIC / "SOURCE_HASH"
    return path.read_text(encoding="utf-8").strip() if path.exists() else None
