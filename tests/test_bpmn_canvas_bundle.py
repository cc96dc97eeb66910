"""The canvas bundle is committed (the app needs no npm): it must be the build of the committed sources.

``make canvas`` rebuilds it and records a SHA-256 of its inputs (lockfile, package.json, build script, every
file under frontend/src) in static/SOURCE_HASH; a change to any of them without a rebuild fails here.
"""

from __future__ import annotations

import json

from app.components.bpmn_canvas.bundle import FRONTEND, STATIC, recorded_hash, source_hash, sources


def test_bundle_is_built_from_the_committed_sources() -> None:
    assert recorded_hash() is not None, "no canvas bundle: run `make canvas`"
    assert recorded_hash() == source_hash(), (
        "the canvas bundle is stale against its sources (package-lock.json or frontend/src changed): "
        "run `make canvas` and commit app/components/bpmn_canvas/static")


def test_bundle_is_complete_and_self_contained() -> None:
    for name in ("index.html", "bundle.js", "bundle.css"):
        assert (STATIC / name).stat().st_size > 0, name
    html = (STATIC / "index.html").read_text()
    css = (STATIC / "bundle.css").read_text()
    js = (STATIC / "bundle.js").read_text()
    # no network: nothing is loaded from another origin
    for text in (html, css):
        assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text, "remote asset"
    assert "bjs-powered-by" in js  # bpmn.io's watermark (its licence) is part of the bundle
    assert "https://waooaw.dev/schema/bpmn/1.0" in js  # our moddle extension is registered


def test_the_lockfile_pins_what_package_json_asks_for() -> None:
    package = json.loads((FRONTEND / "package.json").read_text())
    lock = json.loads((FRONTEND / "package-lock.json").read_text())
    locked = lock["packages"]
    for name in [*package["dependencies"], *package.get("devDependencies", {})]:
        assert f"node_modules/{name}" in locked, name
    assert "package-lock.json" in sources() and "src/index.js" in sources()
