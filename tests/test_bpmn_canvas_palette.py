"""The canvas's palette in Chromium (the committed bundle, no Streamlit): each entry, dragged onto the canvas (a
boundary event onto a task's border), becomes the model's node kind it promises when the canvas is read back."""

from __future__ import annotations

from typing import Any

from app_support import browser_or_skip, launch_chromium

from app.components.bpmn_canvas.bundle import STATIC
from app.designer import read_canvas, to_canvas
from app.palette import PALETTE
from engine.model import ProcessBuilder
from engine.model.nodes import NODE_CLASSES

# Every create tool the palette offers (generated from the model's kinds): a boundary event is dropped on a task's
# lower border, the rest on free canvas. The compensation boundary event is structure (the handler link), no kind.
ENTRIES = [e for e in PALETTE if e["kind"] is not None]
# Kinds that read back as another kind (the reader's rules, engine/bpmn/reader.py): none at present.
READS_AS: dict[str, str] = {}
# The cancel end and cancel boundary entries make just the event: dropped into / onto a transaction it stays one
# (bpmn-js's rules), elsewhere bpmn-js makes it plain. A separate entry makes a new transaction holding both.
INTO_TRANSACTION = [e for e in ENTRIES if e["kind"] in ("cancel_end", "boundary_cancel")
                    and "container" not in e["options"]]
ATTACHED = [e for e in ENTRIES if e["group"] == "boundary" and e not in INTO_TRANSACTION]
FREE = [e for e in ENTRIES if e["group"] != "boundary" and e not in INTO_TRANSACTION]


def test_the_palette_has_an_entry_for_every_node_kind() -> None:
    assert {e["kind"] for e in ENTRIES} == set(NODE_CLASSES)
    actions = [e["action"] for e in PALETTE]
    assert len(actions) == len(set(actions))
    icons = (STATIC / "bundle.css").read_text()
    for entry in PALETTE:
        assert f".{entry['icon']}:before" in icons, entry["icon"]  # a glyph bpmn-font has


def drag(page: Any, action: str, to: tuple[float, float]) -> set[str]:
    before = set(page.evaluate("() => window.bpmnModeler.get('elementRegistry').getAll().map(e => e.id)"))
    page.mouse.click(1380, 20)  # nothing selected: no context pad where the new shape goes
    page.wait_for_timeout(450)  # diagram-js ignores a click within 400 ms of a drag
    entry = page.locator(f'.djs-palette .entry[data-action="{action}"]').bounding_box()
    page.mouse.move(entry["x"] + entry["width"] / 2, entry["y"] + entry["height"] / 2)
    page.mouse.down()
    page.mouse.move(entry["x"] + 30, entry["y"] + 30)
    page.mouse.move(*to, steps=20)
    page.wait_for_timeout(150)
    page.mouse.up()
    page.wait_for_timeout(450)
    after = set(page.evaluate("() => window.bpmnModeler.get('elementRegistry').getAll().map(e => e.id)"))
    return {i for i in after - before if not i.endswith("_label")}


def test_every_palette_entry_becomes_its_node_kind() -> None:
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    hosts = ProcessBuilder("hosts")
    cursor = hosts.start("start")
    for i in range(len(ATTACHED)):
        cursor = cursor.task(f"host_{i}")
    cursor = cursor.task("plain_host")
    cursor = cursor.transaction("tx", lambda t: t.start("tx_start").task("tx_task").end("tx_end"))
    cursor.end("end")
    xml = to_canvas(hosts.build())
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 2200, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto((STATIC / "index.html").as_uri())
            page.evaluate("([xml, palette]) => window.postMessage({type: 'streamlit:render', args: {xml, "
                          "revision: 1, commands: [], ack: 0, markers: [], height: 1060, palette}}, '*')",
                          [xml, PALETTE])
            page.wait_for_function("() => window.canvasState && window.canvasState.imports === 1")
            made: dict[str, Any] = {}
            for i, entry in enumerate(ATTACHED):
                host = page.locator(f'.djs-element.djs-shape[data-element-id="host_{i}"]').bounding_box()
                new = drag(page, entry["action"], (host["x"] + 20, host["y"] + host["height"]))
                assert len(new) == 1, (entry["action"], new)
                made[entry["action"]] = new.pop()
            for i, entry in enumerate(FREE):
                x, y = 260 + (i % 10) * 150, 700 + (i // 10) * 90
                new = drag(page, entry["action"], (x, y))
                assert new, entry["action"]
                made[entry["action"]] = new  # a sub-process and its start event
            into: dict[str, str] = {}
            plain: dict[str, str] = {}
            for entry in INTO_TRANSACTION:
                # the transaction's outer border (the element's box also holds its selection outline)
                tx = page.locator('.djs-element.djs-shape[data-element-id="tx"] .djs-visual rect').first.bounding_box()
                host = page.locator('.djs-element.djs-shape[data-element-id="plain_host"]').bounding_box()
                if entry["group"] == "boundary":  # on the transaction's lower border; on a task's elsewhere
                    there, elsewhere = (tx["x"] + 60, tx["y"] + tx["height"] - 2), (host["x"] + 20,
                                                                                  host["y"] + host["height"])
                else:  # inside the transaction, below its flow; on free canvas (right of the palette) elsewhere
                    there, elsewhere = (tx["x"] + tx["width"] - 40, tx["y"] + tx["height"] - 30), (700, 520)
                (into[entry["action"]],) = drag(page, entry["action"], there)
                (plain[entry["action"]],) = drag(page, entry["action"], elsewhere)
            out = page.evaluate("async () => (await window.bpmnModeler.saveXML({format: true})).xml")
            assert not errors, errors
        finally:
            browser.close()
    definition = read_canvas(out).definition
    assert definition is not None
    for entry in FREE:
        kinds = {definition.node(i).kind for i in made[entry["action"]]}  # type: ignore[attr-defined]
        assert READS_AS.get(entry["kind"], entry["kind"]) in kinds, (entry["action"], kinds)
        if entry["options"].get("container") == "eventSubProcess":
            (sub,) = [definition.node(i) for i in made[entry["action"]] if definition.node(i).kind == "sub_process"]
            assert sub.triggered_by_event, entry["action"]  # type: ignore[attr-defined]
    for entry in ATTACHED:
        node = definition.node(made[entry["action"]])
        interrupting = entry["options"].get("cancelActivity", True)
        assert (node.kind, node.interrupting) == (entry["kind"], interrupting), entry["action"]  # type: ignore
    assert {e["action"] for e in INTO_TRANSACTION} == {"create.cancel_end", "create.boundary_cancel"}
    for entry in INTO_TRANSACTION:
        node = definition.node(into[entry["action"]])
        assert node.kind == entry["kind"], entry["action"]  # type: ignore[attr-defined]
        if entry["group"] == "boundary":
            assert node.attached_to == "tx"  # type: ignore[attr-defined]
        else:
            assert node.id in {n.id for n in definition.node("tx").nodes}  # type: ignore[attr-defined]
        made_plain = definition.index.nodes.get(plain[entry["action"]])  # a none boundary event is no model kind
        expected = {"end"} if entry["kind"] == "cancel_end" else {None}
        assert (made_plain.kind if made_plain else None) in expected, entry["action"]  # type: ignore[attr-defined]


def test_a_generated_flow_id_follows_its_ends_when_a_task_is_dropped_on_the_flow() -> None:
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    b = ProcessBuilder("blank")
    b.start("start").end("end")
    xml = to_canvas(b.build())
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto((STATIC / "index.html").as_uri())
            page.evaluate("([xml, palette]) => window.postMessage({type: 'streamlit:render', args: {xml, "
                          "revision: 1, commands: [], ack: 0, markers: [], height: 860, palette}}, '*')",
                          [xml, PALETTE])
            page.wait_for_function("() => window.canvasState && window.canvasState.imports === 1")
            start = page.locator('.djs-element.djs-shape[data-element-id="start"]').bounding_box()
            end = page.locator('.djs-element.djs-shape[data-element-id="end"]').bounding_box()
            middle = ((start["x"] + start["width"] + end["x"]) / 2, start["y"] + start["height"] / 2)
            new = drag(page, "create.user_task", middle)  # the task and the flow bpmn-js adds after it
            task = next(i for i in new if i.startswith("Activity_"))
            out = page.evaluate("async () => (await window.bpmnModeler.saveXML({format: true})).xml")
            undone = page.evaluate("async () => { window.bpmnModeler.get('commandStack').undo(); "
                                   "return (await window.bpmnModeler.saveXML({format: true})).xml; }")
        finally:
            browser.close()
    definition = read_canvas(out).definition
    assert definition is not None
    flows = {(f.source, f.target): f.id for f in definition.flows}
    assert flows[("start", task)] == f"start__{task}"  # was start__end: it now goes start -> task
    assert flows[(task, "end")].startswith("Flow_")  # bpmn-js's new flow keeps its own id
    assert 'id="start__end"' in undone  # one undo: the drop and the rename together


def test_a_click_on_the_selected_shape_keeps_it_selected() -> None:
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    b = ProcessBuilder("clicks")
    b.start("start").task("work").end("end")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto((STATIC / "index.html").as_uri())
            page.evaluate("([xml, palette]) => window.postMessage({type: 'streamlit:render', args: {xml, "
                          "revision: 1, commands: [], ack: 0, markers: [], height: 860, palette}}, '*')",
                          [to_canvas(b.build()), PALETTE])
            page.wait_for_function("() => window.canvasState && window.canvasState.imports === 1")
            box = page.locator('.djs-element.djs-shape[data-element-id="work"]').bounding_box()
            selected = "() => window.bpmnModeler.get('selection').get().map(e => e.id)"
            for _ in range(2):  # diagram-js alone would deselect on the second click
                page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
                page.wait_for_timeout(450)
                assert page.evaluate(selected) == ["work"]
        finally:
            browser.close()


def test_a_long_palette_tooltip_wraps_inside_the_canvas() -> None:
    """The transaction entries' tooltips are long: shown right of the palette, they wrap instead of running past the
    canvas's right edge (the Streamlit iframe clips what is outside it)."""
    browser_or_skip()
    from playwright.sync_api import sync_playwright

    b = ProcessBuilder("blank")
    b.start("start").end("end")
    xml = to_canvas(b.build())
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 640, "height": 700})
            page.goto((STATIC / "index.html").as_uri())
            page.evaluate("([xml, palette]) => window.postMessage({type: 'streamlit:render', args: {xml, "
                          "revision: 1, commands: [], ack: 0, markers: [], height: 660, palette}}, '*')",
                          [xml, PALETTE])
            page.wait_for_function("() => window.canvasState && window.canvasState.imports === 1")
            for action in ("create.transaction", "create.cancel_end.transaction"):
                page.mouse.move(600, 650)
                page.locator(f'.djs-palette .entry[data-action="{action}"]').hover()
                tip = page.locator(".djs-hover-tooltip").last
                tip.wait_for(timeout=5000)
                box = tip.bounding_box()
                assert box is not None and box["x"] + box["width"] <= 640, (action, box)
                assert "transaction" in tip.inner_text().lower()
        finally:
            browser.close()
