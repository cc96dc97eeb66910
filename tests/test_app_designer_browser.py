"""The Designer end to end in Chromium: a workflow drawn with the mouse and the keyboard on the BPMN canvas and
in the property panel, saved, found again after a reload, broken, fixed by its problem list, downloaded and
imported again."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from app_support import launch_chromium, serve_app

from app.designer import read_canvas
from engine.bpmn import from_bpmn

pytestmark = pytest.mark.timeout(420)
FRAME = 'iframe[title*="bpmn_canvas"]'


class Canvas:
    """The canvas iframe, driven as a person would (real mouse drags), checked through bpmn-js's services."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.locator = page.frame_locator(FRAME)

    @property
    def frame(self) -> Any:
        return next(f for f in self.page.frames if "bpmn_canvas" in f.url)

    def js(self, script: str, arg: Any = None) -> Any:
        return self.frame.evaluate(script, arg)

    def ids(self, type_: str) -> set[str]:
        return set(self.js("t => window.bpmnModeler.get('elementRegistry').filter(e => e.type === t && "
                           "!e.labelTarget).map(e => e.id)", type_))

    def selected(self) -> list[str]:
        return self.js("() => window.bpmnModeler.get('selection').get().map(e => e.id)")

    def box(self, element: str) -> dict[str, float]:
        shape = self.locator.locator(f'.djs-element[data-element-id="{element}"]').first
        found = shape.bounding_box()
        assert found is not None, element
        return found

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        mouse = self.page.mouse
        mouse.move(*start)
        mouse.down()
        mouse.move(start[0] + 5, start[1] + 5)
        mouse.move(*end, steps=20)
        self.page.wait_for_timeout(150)
        mouse.up()
        self.page.wait_for_timeout(450)  # diagram-js swallows a click within 400 ms of a drag's end

    def place(self, action: str, at: tuple[float, float]) -> str:
        """Drag a palette entry onto the canvas; the id of the new element."""
        self.clear()  # a selected shape's context pad could be where the new one goes
        before = set(self.js("() => window.bpmnModeler.get('elementRegistry').getAll().map(e => e.id)"))
        entry = self.locator.locator(f'.djs-palette .entry[data-action="create.{action}"]').bounding_box()
        self.drag((entry["x"] + entry["width"] / 2, entry["y"] + entry["height"] / 2), at)
        after = set(self.js("() => window.bpmnModeler.get('elementRegistry').getAll().map(e => e.id)"))
        new = [i for i in after - before if not i.endswith("_label")]
        assert len(new) == 1, (action, new)
        return new[0]

    def select(self, element: str) -> None:
        """Clear the selection (a click on empty canvas), click the element (a flow on its line), wait for the
        property panel to show it."""
        self.clear()
        if self.js("id => !!window.bpmnModeler.get('elementRegistry').get(id).waypoints", element):
            self.page.mouse.click(*self.flow_point(element))
        else:
            box = self.box(element)
            self.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        panel = self.page.locator(".st-key-designer_panel")
        panel.get_by_text(element, exact=True).first.wait_for(timeout=30_000)
        settle(self.page)

    def clear(self) -> None:
        """Click empty canvas (top right): nothing selected, no context pad in the way."""
        canvas = self.locator.locator("#canvas").bounding_box()
        self.page.mouse.click(canvas["x"] + canvas["width"] - 30, canvas["y"] + 30)
        self.frame.wait_for_function("() => window.bpmnModeler.get('selection').get().length === 0")

    def connect(self, source: str, target: str) -> str:
        """Connect two shapes from the source's context pad; the new flow's id."""
        before = self.ids("bpmn:SequenceFlow")
        self.select(source)
        pad = self.locator.locator('.djs-context-pad .entry[data-action="connect"]').bounding_box()
        box = self.box(target)
        self.drag((pad["x"] + pad["width"] / 2, pad["y"] + pad["height"] / 2),
                  (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2))
        new = self.ids("bpmn:SequenceFlow") - before
        assert len(new) == 1, (source, target, new)
        return new.pop()

    def flow_point(self, flow: str) -> tuple[float, float]:
        """A point on a flow's line (the middle of its last segment), in page coordinates."""
        points = self.js("id => { const c = window.bpmnModeler.get('canvas'); const vb = c.viewbox(); "
                         "const w = window.bpmnModeler.get('elementRegistry').get(id).waypoints; "
                         "const a = w[w.length - 2], b = w[w.length - 1]; "
                         "return [((a.x + b.x) / 2 - vb.x) * vb.scale, ((a.y + b.y) / 2 - vb.y) * vb.scale]; }", flow)
        frame_box = self.page.locator(FRAME).bounding_box()
        canvas_box = self.locator.locator("#canvas").bounding_box()
        del frame_box
        return canvas_box["x"] + points[0], canvas_box["y"] + points[1]

    def renamed(self, old: str, new: str) -> str:
        """Wait until the element ``old`` has the id ``new`` (a node first named gets a readable id); ``new``."""
        self.frame.wait_for_function("([o, n]) => { const r = window.bpmnModeler.get('elementRegistry'); "
                                     "return !r.get(o) && !!r.get(n); }", arg=[old, new], timeout=30_000)
        settle(self.page)
        return new

    def xml(self) -> str:
        return self.js("async () => (await window.bpmnModeler.saveXML({format: true})).xml")


def settle(page: Any) -> None:
    """Wait until Streamlit has finished the run the last action started, and the one the canvas's answer
    starts (the canvas reports a change 250 ms after it)."""
    for _ in range(2):
        page.wait_for_timeout(400)
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=30_000)
    exceptions = page.locator('[data-testid="stException"]')
    assert not exceptions.count(), exceptions.first.inner_text()


def field(page: Any, label: str) -> Any:
    """An input of the property panel by its label (the last one: a form field's Name follows the task's)."""
    return page.locator(".st-key-designer_panel").get_by_label(label, exact=True).last


def choose(page: Any, label: str, option: str) -> None:
    """Pick an option of a panel selectbox (again if a rerun closed the list before the click)."""
    for attempt in range(3):
        field(page, label).click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            break
        except Exception:
            if attempt == 2:
                raise
            settle(page)
    settle(page)


def add_row(page: Any, button: str) -> None:
    """Click an item editor's add button (``Add variable``, ``Add form field``) and wait until its new row (one
    more Name box) is there. A click that lands while a late rerun redraws the panel is lost: after 15 s without
    the row (a slow run shows it well before), the button is clicked once more."""
    from playwright.sync_api import expect

    names = page.locator(".st-key-designer_panel").get_by_label("Name", exact=True)
    count = names.count()
    for attempt in range(2):
        page.get_by_role("button", name=button).click()
        try:
            expect(names).to_have_count(count + 1, timeout=15_000)
            break
        except AssertionError:
            if attempt:
                raise
            settle(page)
    settle(page)


def type_into(page: Any, label: str, text: str, panel: bool = True) -> None:
    box = field(page, label) if panel else page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")
    settle(page)


def test_draw_save_reload_break_and_reimport(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("WAOOAW_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "data"
    with serve_app({"WAOOAW_DATA_DIR": str(data)}) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/Designer")

            # a new blank design: a start and an end event; the end goes (selected, Delete key)
            page.get_by_role("button", name="New").click()
            type_into(page, "Name (becomes the process id)", "document_check", panel=False)
            page.get_by_role("button", name="Create").click()
            canvas = Canvas(page)
            canvas.locator.locator(".djs-palette").wait_for(timeout=60_000)
            page.keyboard.press("Escape")  # close the popover
            settle(page)
            canvas.select("end")
            page.keyboard.press("Delete")
            settle(page)
            assert canvas.ids("bpmn:EndEvent") == set()

            start = canvas.box("start")
            y = start["y"] + start["height"] / 2
            x0 = start["x"] + start["width"]

            # start -> service task (an agent from the registry)
            service = canvas.place("service_task", (x0 + 100, y))
            canvas.connect("start", service)
            canvas.select(service)
            type_into(page, "Name", "Check documents")
            service = canvas.renamed(service, "check_documents")  # bpmn-js's random id gives way to the name's
            choose(page, "Agent", "designs.agents:wowvision_validate")

            # -> user task: assignee, SLA 4 h, one required boolean form field
            user = canvas.place("user_task", (x0 + 240, y))
            canvas.connect(service, user)
            canvas.select(user)
            type_into(page, "Name", "Approve documents")
            user = canvas.renamed(user, "approve_documents")
            type_into(page, "Assignee", "alice")
            type_into(page, "SLA (hours)", "4")
            add_row(page, "Add form field")
            type_into(page, "Name", "approved")  # the form field's name (the task's own Name is filled)
            choose(page, "Type", "boolean")
            page.locator(".st-key-designer_panel").get_by_text("Required", exact=True).last.click()
            settle(page)

            # -> exclusive gateway -> two end events, one flow conditional, the other the default
            gateway = canvas.place("exclusive_gateway", (x0 + 370, y))
            canvas.connect(user, gateway)
            done = canvas.place("end", (x0 + 470, y - 90))
            redo = canvas.place("end", (x0 + 470, y + 90))
            approved = canvas.connect(gateway, done)
            other = canvas.connect(gateway, redo)
            canvas.select(approved)
            type_into(page, "Condition", "approved")
            canvas.select(other)
            page.get_by_text("Default flow", exact=False).first.click()
            settle(page)

            # the process declares the variable the condition reads (the panel of the process: nothing selected)
            canvas.clear()
            page.locator(".st-key-designer_panel").get_by_text("document_check", exact=True).wait_for()
            settle(page)
            add_row(page, "Add variable")  # the variable's own Name, not the process's
            type_into(page, "Name", "approved")
            choose(page, "Type", "boolean")

            expect(page.get_by_text("No problems")).to_be_visible(timeout=30_000)
            drawn = read_canvas(canvas.xml())
            assert drawn.definition is not None and not drawn.problems
            d = drawn.definition
            assert d.node(service).agent == "designs.agents:wowvision_validate"  # type: ignore[attr-defined]
            task = d.node(user)
            assert (task.assignee, task.sla) == ("alice", "PT4H")  # type: ignore[attr-defined]
            assert [(f.name, f.type, f.required) for f in task.form] == [("approved", "boolean", True)]  # type: ignore[attr-defined]
            assert d.node(gateway).default == other  # type: ignore[attr-defined]
            assert d.index.flows[approved].condition == "approved"
            page.screenshot(path=shots / "designer_canvas.png")

            # save; a reload opens it again
            page.get_by_role("button", name="Save", exact=True).click()
            expect(page.get_by_text("Saved as 'document_check'")).to_be_visible(timeout=30_000)
            page.reload()
            canvas = Canvas(page)
            canvas.locator.locator(f'.djs-element[data-element-id="{gateway}"]').wait_for(timeout=60_000)
            reopened = read_canvas(canvas.xml()).definition
            assert reopened is not None and reopened.node(gateway).default == other  # type: ignore[attr-defined]
            assert {n.id for n in reopened.all_nodes()} == {n.id for n in d.all_nodes()}
            # the gateway's default survives the reload in the XML bpmn-js imported (its renderer draws the slash
            # from it; designer_reloaded.png shows it)
            assert canvas.js("id => window.bpmnModeler.get('elementRegistry').get(id).businessObject.default.id",
                             gateway) == other
            page.screenshot(path=shots / "designer_reloaded.png")

            # break it: the flow is no longer the default and the other has no condition; the problem names the gateway
            canvas.select(other)
            page.get_by_text("Default flow", exact=False).first.click()
            settle(page)
            canvas.select(approved)
            type_into(page, "Condition", "")
            # the validator names the gateway's flows: each needs a condition, or one must be the default (both
            # are set in the flow's panel); clicking the problem selects that flow on the canvas
            problem = page.locator(".st-key-designer_problems").get_by_role("button", name=gateway).first
            expect(problem).to_be_visible(timeout=30_000)
            named = [f for f in (approved, other) if f in problem.inner_text()]
            assert named, problem.inner_text()
            canvas.clear()
            settle(page)
            problem.click()
            settle(page)
            canvas.frame.wait_for_function("id => window.bpmnModeler.get('selection').get().map(e => e.id)"
                                           ".join() === id", arg=named[0])
            page.screenshot(path=shots / "designer_problem.png")

            # download BPMN and import it again: the same definition
            broken = read_canvas(canvas.xml()).definition
            with page.expect_download() as download:
                page.get_by_role("button", name="Download BPMN").click()
            file = tmp_path / "document_check.bpmn"
            download.value.save_as(file)
            assert from_bpmn(file.read_bytes()) == broken
            page.get_by_role("button", name="Upload").click()
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(file))
            settle(page)
            page.get_by_role("button", name="Discard changes").click() if page.get_by_role(
                "button", name="Discard changes").count() else None
            page.get_by_role("button", name="Import").click()
            settle(page)
            if page.get_by_role("button", name="Discard changes").count():
                page.get_by_role("button", name="Discard changes").click()
                settle(page)
            canvas = Canvas(page)
            canvas.locator.locator(f'.djs-element[data-element-id="{gateway}"]').wait_for(timeout=60_000)
            assert read_canvas(canvas.xml()).definition == broken
            assert not page.get_by_role("button", name="Import").is_visible()  # the Upload panel closed
            assert not errors, errors
        except BaseException:
            page.screenshot(path=shots / "designer_failed.png")
            raise
        finally:
            browser.close()


def create_from_template(page: Any, name: str, template: str) -> Canvas:
    """New → a name → "template: ..." → Create, as a person does; the canvas once the design is drawn."""
    page.get_by_role("button", name="New").click()
    type_into(page, "Name (becomes the process id)", name, panel=False)
    page.get_by_label("Start from").click()
    page.get_by_role("option", name=f"template: {template}").click()
    settle(page)
    page.get_by_role("button", name="Create").click()
    settle(page)
    page.keyboard.press("Escape")  # the popover closes
    canvas = Canvas(page)
    canvas.locator.locator('.djs-element[data-element-id="start"]').wait_for(timeout=60_000)
    canvas.frame.wait_for_function(f"() => window.canvasState.design !== undefined && "
                                   f"window.bpmnModeler.getDefinitions().rootElements.some(e => e.id === '{name}')")
    settle(page)
    return canvas


def diagram_box(canvas: Canvas) -> dict[str, float]:
    """The drawn diagram's bounds in page pixels (every shape and label, as bpmn-js measures them)."""
    inner = canvas.js("() => { const c = window.bpmnModeler.get('canvas'); const v = c.viewbox(); "
                      "return {x: (v.inner.x - v.x) * v.scale, y: (v.inner.y - v.y) * v.scale, "
                      "width: v.inner.width * v.scale, height: v.inner.height * v.scale}; }")
    frame = canvas.locator.locator("#canvas").bounding_box()
    return {**inner, "x": frame["x"] + inner["x"], "y": frame["y"] + inner["y"]}


def test_a_template_opens_in_view_fitted_and_the_wheel_scrolls(tmp_path: Path) -> None:
    """At 1400x900 the canvas and its whole palette are in the first screen; a template opens fitted between the
    palette and the zoom buttons, centred, at most 1:1 and at least a readable 0.8 (a wide one from its left
    edge); the wheel scrolls the canvas, Ctrl+wheel zooms, and outside the canvas the wheel scrolls the page."""
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("WAOOAW_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with serve_app({"WAOOAW_DATA_DIR": str(tmp_path / "data")}) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/Designer")

            # a small template: the whole diagram fitted (at most 1:1), centred in the free part of the canvas
            canvas = create_from_template(page, "review", "pr_review")
            page.screenshot(path=shots / "designer_template_small.png")
            palette = canvas.locator.locator(".djs-palette").bounding_box()
            frame = canvas.locator.locator("#canvas").bounding_box()
            assert palette["y"] >= 0 and palette["y"] + palette["height"] <= 900, palette
            assert frame["y"] < 300 and frame["y"] + frame["height"] <= 900, frame  # the canvas starts high
            last_tool = canvas.locator.locator(".djs-palette .entry").last.bounding_box()
            assert last_tool["y"] + last_tool["height"] <= min(900, palette["y"] + palette["height"])
            zoom = canvas.locator.locator("#zoom").bounding_box()
            assert 0.8 <= canvas.js("() => window.bpmnModeler.get('canvas').zoom()") <= 1  # fitted, readable
            box = diagram_box(canvas)
            left = box["x"] - (palette["x"] + palette["width"])
            right = zoom["x"] - (box["x"] + box["width"])
            top, bottom = box["y"] - frame["y"], frame["y"] + frame["height"] - (box["y"] + box["height"])
            assert left > 0 and right > 0 and abs(left - right) <= 4, (left, right)
            assert top > 0 and bottom > 0 and abs(top - bottom) <= 4, (top, bottom)

            # a wide template: fitting it whole would make labels unreadable; it opens at 0.8 from its start
            canvas = create_from_template(page, "campaign", "marketing_campaign")
            page.screenshot(path=shots / "designer_template_wide.png")
            assert canvas.js("() => window.bpmnModeler.get('canvas').zoom()") == pytest.approx(0.8, abs=0.01)
            box = diagram_box(canvas)
            palette = canvas.locator.locator(".djs-palette").bounding_box()
            assert 0 < box["x"] - (palette["x"] + palette["width"]) <= 30  # the start event beside the palette
            start = canvas.box("start")
            assert start["x"] > palette["x"] + palette["width"] and start["y"] + start["height"] <= 900

            # the wheel over the canvas scrolls it (the zoom stays), Ctrl+wheel zooms
            frame = canvas.locator.locator("#canvas").bounding_box()
            page.mouse.move(frame["x"] + frame["width"] * 0.6, frame["y"] + frame["height"] / 2)
            view = "() => { const v = window.bpmnModeler.get('canvas').viewbox(); return [v.x, v.y, v.scale]; }"
            before = canvas.js(view)
            page.mouse.wheel(0, 200)
            page.wait_for_timeout(300)
            after = canvas.js(view)
            assert after[2] == before[2] and after[1] > before[1], (before, after)
            page.keyboard.down("Control")
            page.mouse.wheel(0, -200)
            page.keyboard.up("Control")
            page.wait_for_timeout(300)
            assert canvas.js(view)[2] > after[2]
            # outside the canvas the page scrolls (to the downloads below it)
            main = page.locator('[data-testid="stMain"]')
            scrolled = "e => e.scrollTop"
            assert main.evaluate(scrolled) == 0
            page.mouse.move(frame["x"] + frame["width"] + 150, frame["y"] + frame["height"] + 20)
            page.mouse.wheel(0, 300)
            page.wait_for_timeout(500)
            assert main.evaluate(scrolled) > 0
            expect_help = page.get_by_text("Ctrl+wheel", exact=False)
            assert expect_help.count() == 1 and "zoom" in expect_help.inner_text()

            # the process's name edited in its panel reaches the canvas (a process has no label to update)
            name = page.locator(".st-key-designer_panel").get_by_label("Name", exact=True).first
            name.fill("Spring campaign")
            name.press("Enter")
            canvas.frame.wait_for_function("() => window.bpmnModeler.get('canvas').getRootElement()"
                                           ".businessObject.name === 'Spring campaign'", timeout=30_000)
            settle(page)
            expect(page.get_by_text("unsaved changes — Spring campaign", exact=False)).to_be_visible(timeout=30_000)
            assert name.input_value() == "Spring campaign"
            assert not errors, errors
        except BaseException:
            page.screenshot(path=shots / "designer_template_failed.png")
            raise
        finally:
            browser.close()


def test_edits_after_new_in_the_same_tab_reach_the_canvas(tmp_path: Path) -> None:
    """Edits on one design, then New in the same tab (the canvas's frame stays, remembering the commands it
    applied): the new design's first panel edits reach the canvas and the YAML; none is dropped as applied."""
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("WAOOAW_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with serve_app({"WAOOAW_DATA_DIR": str(tmp_path / "data")}) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{url}/Designer")
            name_of = "id => window.bpmnModeler.get('elementRegistry').get(id).businessObject.name || null"

            canvas = create_from_template(page, "first", "pr_review")
            canvas.select("deploy")
            for i in (1, 2, 3):
                type_into(page, "Name", f"Ship {i}")
                canvas.frame.wait_for_function(f"id => ({name_of})(id) === 'Ship {i}'", arg="deploy",
                                               timeout=30_000)
            applied = canvas.js("() => window.canvasState.ack")
            page.get_by_role("button", name="Save", exact=True).click()
            expect(page.get_by_text("Saved as 'first'")).to_be_visible(timeout=30_000)
            settle(page)

            canvas = create_from_template(page, "second", "pr_review")
            assert canvas.js("() => window.canvasState.imports") >= 2  # the same frame imported the new design
            canvas.select("deploy")
            for i in (1, 2):
                type_into(page, "Name", f"Kick off {i}")
                canvas.frame.wait_for_function(f"id => ({name_of})(id) === 'Kick off {i}'", arg="deploy",
                                               timeout=30_000)
                settle(page)
                assert field(page, "Name").input_value() == f"Kick off {i}"
            assert canvas.js("() => window.canvasState.ack") > applied
            page.get_by_text("YAML (advanced)", exact=True).click()
            settle(page)
            yaml = page.get_by_label("YAML", exact=True).input_value()
            assert "Kick off 2" in yaml and "Ship" not in yaml
            assert not errors, errors
        except BaseException:
            page.screenshot(path=shots / "designer_new_edits_failed.png")
            raise
        finally:
            browser.close()
