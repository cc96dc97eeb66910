"""Serving the Streamlit app for end-to-end tests in a real browser (Debian's Chromium, never a download)."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def browser_or_skip() -> None:
    """Skip without Chromium or Playwright; under CI=true their absence is a failure."""
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install playwright)")
    if missing:
        reason = "end-to-end test needs " + " and ".join(missing)
        if IN_CI:
            pytest.fail(f"CI=true promises a browser: {reason}")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(env: Mapping[str, str] | None = None, port: int | None = None,
              options: tuple[str, ...] = ()) -> Iterator[str]:
    """`streamlit run app/Home.py` on ``port`` (default: a free one; ``env`` added to this process's
    environment, ``options`` more ``--section.option value`` arguments); yields its URL once Streamlit says it
    is listening, and stops it afterwards."""
    browser_or_skip()
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP / "Home.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         *options],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen = []
    try:
        while True:
            line = lines.get(timeout=60)
            if line is None:
                pytest.fail("streamlit exited before serving:\n" + "".join(seen))
            seen.append(line)
            if f":{port}" in line:
                break
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium through Playwright, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
