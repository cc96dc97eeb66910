"""The whole loop in a real browser (Playwright + Debian's Chromium), each flow in one visit to the app:

1. a design drawn on the canvas (palette drag, connect, properties: the Designer test's helpers): simulate it,
   deploy it, start an instance, move the clock 4 hours, see the approval escalated to the CTO, approve it as
   the CTO (seeing what is approved), follow the link to the instance and see it completed with its path and
   variable history;
2. start 20 customer-onboarding instances, move the clock 7 days, see them finish, and the simulator's
   predicted-vs-observed view.

``WAOOAW_SCREENSHOTS=docs/img`` keeps the screenshots (1400x900, the README's pictures).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_support import launch_chromium, serve_app

from engine.runtime import Engine
from engine.security import Principal


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def served(data_dir: Path) -> Iterator[str]:
    """The app on a fresh data directory (no saved design yet)."""
    env = {"WAOOAW_DATA_DIR": str(data_dir), "WAOOAW_DB": "", "WAOOAW_MODE": "demo"}
    with serve_app(env) as url:
        yield url


def settle(page: Any) -> None:
    """Wait until the script run under way has finished (no stale elements left)."""
    from playwright.sync_api import expect

    expect(page.locator('[data-testid="stElementContainer"][data-stale="true"]')).to_have_count(0)
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0)


def go(page: Any, name: str) -> None:
    nav = page.locator('[data-testid="stSidebarNav"]')
    if not nav.is_visible():  # the Designer collapses the sidebar for the canvas: open it again
        page.locator('[data-testid="stExpandSidebarButton"], [data-testid="stSidebarCollapsedControl"] button'
                     ).first.click()
        nav.wait_for()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=name, exact=True).click()
    settle(page)


def act_as(page: Any, label: str) -> None:
    """Pick a demo persona (again if a rerun closed the list before the click)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    sidebar = page.locator('[data-testid="stSidebar"]')
    for attempt in range(3):
        sidebar.get_by_role("combobox", name="Acting as").click()
        try:
            page.get_by_role("option", name=label).click(timeout=5_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            settle(page)
    settle(page)


def shoot(page: Any, shots: Path | None, name: str) -> None:
    """A README picture (only when asked for: tables are canvases that paint a moment after they appear)."""
    if shots is not None:
        page.wait_for_timeout(1500)
        page.screenshot(path=shots / f"{name}.png")


def choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` in the select box ``label`` (typing narrows the list; a click that lands while the
    page is still rerunning can close it again, so open it until the option shows)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    combo = page.get_by_role("combobox", name=label, exact=True)
    for attempt in range(3):
        combo.click()
        combo.press_sequentially(option)
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            settle(page)
    settle(page)


@pytest.fixture
def shots() -> Path | None:
    folder = os.environ.get("WAOOAW_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def browser_page(p: Any) -> tuple[Any, Any, list[str]]:
    from playwright.sync_api import expect

    browser = launch_chromium(p)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return browser, page, errors


def append(canvas: Any, source: str, action: str) -> str:
    """Select ``source`` on the canvas and click a context-pad entry (``append.append-task``, ``append.gateway``,
    ``append.end-event``); the id of the shape it adds."""
    from test_app_designer_browser import settle as canvas_settle

    before = set(canvas.js("() => window.bpmnModeler.get('elementRegistry').getAll().map(e => e.id)"))
    canvas.select(source)
    canvas.locator.locator(f'.djs-context-pad .entry[data-action="{action}"]').click()
    canvas.page.wait_for_timeout(500)
    canvas_settle(canvas.page)
    after = set(canvas.js("() => window.bpmnModeler.get('elementRegistry').getAll().map(e => e.id)"))
    new = [i for i in after - before if not i.endswith("_label")
           and not canvas.js("id => !!window.bpmnModeler.get('elementRegistry').get(id).waypoints", i)]
    assert len(new) == 1, (action, new)
    return new[0]


def draw_expense(page: Any) -> None:
    """In the Designer, draw with the mouse and the property panel (tests/test_app_designer_browser.py's
    helpers): start → "Approve expense" (the marketing lead, SLA 4 h, escalated to the CTO, a required yes/no
    form field) → "Approved?" → Paid (if approved) / Rejected (default); the process takes ``amount``."""
    from playwright.sync_api import expect
    from test_app_designer_browser import Canvas, add_row, field, type_into
    from test_app_designer_browser import choose as panel_choose
    from test_app_designer_browser import settle as canvas_settle

    page.get_by_role("button", name="Act as Engineer (engineer)").click()  # a designer
    canvas_settle(page)
    page.get_by_role("button", name="New").click()
    type_into(page, "Name (becomes the process id)", "expense", panel=False)
    page.get_by_role("button", name="Create").click()
    canvas = Canvas(page)
    canvas.locator.locator(".djs-palette").wait_for(timeout=60_000)
    page.keyboard.press("Escape")
    canvas_settle(page)
    canvas.select("end")
    page.keyboard.press("Delete")
    canvas_settle(page)
    # the tasks sit low in the palette (below the canvas at 1400x900): build from the context pad instead,
    # appending and replacing as a bpmn-js user does; each append draws its flow too
    user = append(canvas, "start", "append.append-task")
    canvas.select(user)
    canvas.locator.locator('.djs-context-pad .entry[data-action="replace"]').click()
    canvas.locator.locator('.djs-popup [data-id="replace-with-user-task"]').click()
    page.wait_for_timeout(500)
    canvas_settle(page)
    (user,) = canvas.ids("bpmn:UserTask")  # the replaced shape (bpmn-js may give it a new id)
    canvas.select(user)
    type_into(page, "Name", "Approve expense")
    user = canvas.renamed(user, "approve_expense")  # a node first named takes a readable id from its name
    type_into(page, "Assignee", "marketing-lead")
    type_into(page, "SLA (hours)", "4")
    page.locator(".st-key-designer_panel").get_by_text("On timeout", exact=True).first.click()
    canvas_settle(page)
    panel_choose(page, "Action", "escalate")
    field(page, "Assignee").fill("cto")  # the escalation's (the last Assignee in the panel)
    field(page, "Assignee").press("Enter")
    canvas_settle(page)
    add_row(page, "Add form field")
    type_into(page, "Name", "approved")
    panel_choose(page, "Type", "boolean")
    page.locator(".st-key-designer_panel").get_by_text("Required", exact=True).last.click()
    canvas_settle(page)

    gateway = append(canvas, user, "append.gateway")
    before = canvas.ids("bpmn:SequenceFlow")
    paid = append(canvas, gateway, "append.end-event")
    yes = (canvas.ids("bpmn:SequenceFlow") - before).pop()
    before = canvas.ids("bpmn:SequenceFlow")
    append(canvas, gateway, "append.end-event")
    no = (canvas.ids("bpmn:SequenceFlow") - before).pop()
    del paid
    canvas.select(yes)
    type_into(page, "Condition", "approved")
    canvas.select(no)
    page.get_by_text("Default flow", exact=False).first.click()
    canvas_settle(page)

    canvas.clear()
    page.locator(".st-key-designer_panel").get_by_text("expense", exact=True).wait_for()
    canvas_settle(page)
    for name, kind in (("approved", "boolean"), ("amount", "number")):
        add_row(page, "Add variable")
        type_into(page, "Name", name)
        panel_choose(page, "Type", kind)
    expect(page.get_by_text(re.compile(r"No problems|Problems · 0 error"))).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Saved as 'expense'")).to_be_visible(timeout=30_000)
    canvas_settle(page)


def test_design_simulate_deploy_run_escalate_approve(served: str, data_dir: Path, shots: Path | None) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser, page, errors = browser_page(p)
        try:
            page.goto(served)
            expect(page.get_by_role("heading", name="waooaw")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Engine time")).to_be_visible()
            settle(page)
            shoot(page, shots, "app_home")

            # design it on the canvas, as a designer (the demo's first persona on the Designer)
            go(page, "Designer")
            draw_expense(page)

            # simulate the design open in the Designer: the form is the run (no apply step)
            go(page, "Simulator")
            expect(page.get_by_role("combobox", name="Design", exact=True)).to_have_value("expense (saved)")
            rate = page.get_by_role("spinbutton", name="Arrivals per hour")
            rate.fill("3")
            rate.press("Tab")
            settle(page)
            page.get_by_role("button", name="Run simulation").click()
            headline = page.get_by_text(re.compile(r"Mean cycle time .* \(finished cases\)"))
            expect(headline).to_be_visible(timeout=60_000)
            expect(page.get_by_text(re.compile(r"Cases: [\d,]+ arrived after the warm-up"))).to_be_visible()
            settle(page)
            headline.evaluate("e => e.scrollIntoView({block: 'start'})")
            shoot(page, shots, "app_simulator")

            # deploy it: a deployer's job
            go(page, "Deployments")
            act_as(page, "Engineering lead (engineering-manager)")
            expect(page.get_by_role("combobox", name="Saved design")).to_have_value("expense")
            page.get_by_role("button", name="Deploy", exact=True).click()
            expect(page.get_by_text("Deployed expense as version 1.")).to_be_visible()
            settle(page)
            shoot(page, shots, "app_deployments")
            act_as(page, "Marketing lead (marketing-lead)")

            # start an instance from the Runs page: the picker is on the design just deployed, and the form asks
            # only for the amount (a form sets `approved`)
            go(page, "Runs")
            page.get_by_text("Start an instance").click()
            expect(page.get_by_role("combobox", name="Process to start", exact=True)).to_have_value("expense")
            form = page.locator('[data-testid="stForm"]').filter(has=page.get_by_role("button", name="Start"))
            expect(form.get_by_label("approved")).to_have_count(0)
            form.get_by_label("amount", exact=True).fill("120.5")
            form.get_by_label("Business key (optional)").fill("EXP-{n}")
            form.get_by_role("button", name="Start").click()
            expect(page.get_by_text("Started expense.")).to_be_visible()
            expect(page.get_by_role("link", name=re.compile(r"Open instance [0-9a-f]{8}"))).to_be_visible()
            settle(page)
            shoot(page, shots, "app_runs")
            check = Engine(f"sqlite:///{data_dir / 'waooaw.db'}", principal=Principal.system())
            (row,) = check.instances(definition="expense").to_dict("records")
            assert row["business_key"] == "EXP-1"

            # four hours later the approval has escalated to the CTO
            page.locator('[data-testid="stSidebar"]').get_by_role("button", name="+4 h").click()
            expect(page.get_by_text(re.compile(r"Clock moved 4\.0 h"))).to_be_visible()
            settle(page)
            go(page, "Tasks")
            act_as(page, "CTO (cto)")
            expect(page.get_by_role("heading", name="Inbox of cto")).to_be_visible()
            expect(page.get_by_text(re.compile(r"Escalated$")).first).to_be_visible()  # the badge
            expect(page.get_by_text(re.compile(r"key EXP-1"))).to_be_visible()  # what is approved
            shoot(page, shots, "app_tasks")
            complete = page.locator('[data-testid="stForm"]').filter(has=page.get_by_role("button", name="Complete"))
            complete.get_by_text("yes", exact=True).click()
            complete.get_by_role("button", name="Complete").click()
            expect(page.get_by_text(re.compile(r"Task \d+ completed\."))).to_be_visible()
            settle(page)

            # the link after Complete: the instance, completed, with the path it took and who changed what
            page.get_by_role("link", name=re.compile(r"Open instance [0-9a-f]{8}")).click()
            settle(page)
            expect(page.get_by_text(re.compile(r"expense v1 · key EXP-1 · started .* · ended "))).to_be_visible()
            expect(page.get_by_text("Path taken")).to_be_visible()
            shoot(page, shots, "app_instance")
            page.get_by_role("tab", name="Variables").click()
            expect(page.get_by_text("who changed what")).to_be_visible()
            view = check.instance(row["id"])
            assert view.status == "completed" and view.variables["approved"] is True
            assert "cto" in set(view.history["actor"].dropna())
            assert not errors, errors
        except Exception:
            page.screenshot(path=Path(os.environ.get("WAOOAW_FAILSHOT", "/tmp")) / "waooaw_loop_failure.png")
            raise
        finally:
            browser.close()


def test_twenty_onboardings_through_seven_days_and_predicted_vs_observed(served: str, data_dir: Path,
                                                                          shots: Path | None) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser, page, errors = browser_page(p)
        try:
            page.goto(f"{served}/Runs")
            expect(page.get_by_text("Engine time")).to_be_visible(timeout=60_000)
            settle(page)
            page.get_by_text("Start an instance").click()
            choose(page, "Process to start", "customer_onboarding")
            form = page.locator('[data-testid="stForm"]').filter(has=page.get_by_role("button", name="Start"))
            form.get_by_label("email", exact=True).fill("lead{n}@example.com")  # 20 different leads
            form.get_by_label("Instances", exact=True).fill("20")
            form.get_by_role("button", name="Start").click()
            expect(page.get_by_text("Started 20 instances of customer_onboarding.")).to_be_visible()
            settle(page)
            check = Engine(f"sqlite:///{data_dir / 'waooaw.db'}", principal=Principal.system())
            assert len(check.instances(definition="customer_onboarding", status="running")) == 20

            page.locator('[data-testid="stSidebar"]').get_by_role("button", name="+7 days").click()
            expect(page.get_by_text(re.compile(r"Clock moved 168\.0 h"))).to_be_visible()
            settle(page)
            expect(page.get_by_text("20 instance(s) match")).to_be_visible()
            assert len(check.instances(definition="customer_onboarding", status="completed")) == 20

            go(page, "Simulator")
            choose(page, "Design", "customer_onboarding (template)")
            page.get_by_role("button", name="Run simulation").click()
            expect(page.get_by_text(re.compile(r"Mean cycle time 7\.0 days"))).to_be_visible(timeout=60_000)
            page.get_by_role("tab", name="Predicted vs observed").click()
            expect(page.get_by_text(re.compile(r"observed values lie inside the simulation's 95% interval"))
                   ).to_be_visible()
            expect(page.get_by_text("for 20 finished instance(s)", exact=False)).to_be_visible()
            settle(page)
            page.get_by_role("tab", name="Predicted vs observed").evaluate("e => e.scrollIntoView({block: 'start'})")
            shoot(page, shots, "app_predicted_vs_observed")
            assert not errors, errors
        except Exception:
            page.screenshot(path=Path(os.environ.get("WAOOAW_FAILSHOT", "/tmp")) / "waooaw_loop_failure.png")
            raise
        finally:
            browser.close()
