"""The canvas's palette in Chromium (the committed bundle, no Streamlit): each entry, dragged onto the canvas (a
boundary event onto a task's border), becomes the model's node kind it promises when the canvas is read back."""

from __future__ import annotations

from typing import Any

from app_support import browser_or_skip, launch_chromium

from app.components.bpmn_canvas.bundle import STATIC
from app.designer import read_canvas, to_canvas
from engine.model import ProcessBuilder

# palette entry -> the kind it becomes (entries that need a host are dropped on a task's lower border)
FREE = {"start-event": "start", "timer-start-event": "timer_start", "message-start-event": "message_start",
        "end-event": "end", "terminate-end-event": "terminate_end", "error-end-event": "error_end",
        "message-end-event": "message_throw", "timer-catch-event": "timer_catch",
        "message-catch-event": "message_catch", "message-throw-event": "message_throw",
        "compensation-throw-event": "compensation_throw", "exclusive-gateway": "exclusive_gateway",
        "parallel-gateway": "parallel_gateway", "inclusive-gateway": "inclusive_gateway",
        "event-based-gateway": "event_gateway", "task": "task", "service-task": "service_task",
        "user-task": "user_task", "subprocess-expanded": "sub_process"}
ATTACHED = {"timer-boundary-event": ("boundary_timer", True),
            "timer-boundary-event-non-interrupting": ("boundary_timer", False),
            "message-boundary-event": ("boundary_message", True),
            "message-boundary-event-non-interrupting": ("boundary_message", False),
            "error-boundary-event": ("boundary_error", True)}


def drag(page: Any, action: str, to: tuple[float, float]) -> set[str]:
    before = set(page.evaluate("() => window.bpmnModeler.get('elementRegistry').getAll().map(e => e.id)"))
    page.mouse.click(1380, 20)  # nothing selected: no context pad where the new shape goes
    page.wait_for_timeout(450)  # diagram-js ignores a click within 400 ms of a drag
    entry = page.locator(f'.djs-palette .entry[data-action="create.{action}"]').bounding_box()
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
    cursor.end("end")
    xml = to_canvas(hosts.build())
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto((STATIC / "index.html").as_uri())
            page.evaluate("(xml) => window.postMessage({type: 'streamlit:render', args: {xml, revision: 1, "
                          "commands: [], ack: 0, markers: [], height: 860}}, '*')", xml)
            page.wait_for_function("() => window.canvasState && window.canvasState.imports === 1")
            made: dict[str, str] = {}
            for i, (action, _) in enumerate(ATTACHED.items()):
                host = page.locator(f'.djs-element.djs-shape[data-element-id="host_{i}"]').bounding_box()
                new = drag(page, action, (host["x"] + 20, host["y"] + host["height"]))
                assert len(new) == 1, (action, new)
                made[action] = new.pop()
            for i, action in enumerate(FREE):
                x, y = 260 + (i % 7) * 150, 640 + (i // 7) * 95
                new = drag(page, action, (x, y))
                assert new, action
                made[action] = next(iter(sorted(new, key=lambda e: e.startswith("Event"))))  # a sub-process's start
            out = page.evaluate("async () => (await window.bpmnModeler.saveXML({format: true})).xml")
            assert not errors, errors
        finally:
            browser.close()
    definition = read_canvas(out).definition
    assert definition is not None
    for action, kind in FREE.items():
        assert definition.node(made[action]).kind == kind, action  # type: ignore[attr-defined]
    for action, (kind, interrupting) in ATTACHED.items():
        node = definition.node(made[action])
        assert (node.kind, node.interrupting) == (kind, interrupting), action  # type: ignore[attr-defined]
