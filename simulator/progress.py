"""Progress bars that fit where the output goes: a widget in Jupyter, a bar in a terminal, nothing elsewhere.

``tqdm.auto`` picks the Jupyter widget when ipywidgets is installed; without it (or in a terminal) a text
bar redrawn at most every half second. When standard error is neither a terminal nor a notebook (CI logs,
a pipe, ``nbclient`` without a widget manager) there is no bar at all, so logs and saved notebooks stay small.
"""

from __future__ import annotations

import sys
from typing import Any


def in_notebook() -> bool:
    """True inside a Jupyter kernel (ipykernel's shell), False in a terminal IPython or plain Python."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - a broken IPython install
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def bar(total: float, desc: str, **options: Any) -> Any | None:
    """A tqdm bar for ``total`` units, or None when nobody would see it (see the module docstring)."""
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm
        except ImportError:
            from tqdm.std import tqdm
        return tqdm(total=total, desc=desc, mininterval=0.5, **options)
    stream = sys.stderr
    if stream is not None and hasattr(stream, "isatty") and stream.isatty():
        from tqdm.std import tqdm

        return tqdm(total=total, desc=desc, file=stream, mininterval=0.2, **options)
    return None
