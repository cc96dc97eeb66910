"""The Tasks page end to end in a real browser: start a marketing campaign, then approve it from the inbox."""

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
def tasks_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture
def served_tasks_app(tasks_db: str, tmp_path: Path) -> Iterator[str]:
    """The app served on a fresh SQLite file (WAOOAW_DB), so the inbox starts empty."""
    with serve_app({"WAOOAW_DB": tasks_db, "WAOOAW_DATA_DIR": str(tmp_path / "data")}) as url:
        yield url


def settle(page: Any) -> None:
    """Wait for the script run under way to finish: Streamlit keeps the last run's elements, marked stale,
    until the new run has replaced or dropped them (a locator could otherwise find an old and a new one)."""
    from playwright.sync_api import expect

    expect(page.locator('[data-testid="stElementContainer"][data-stale="true"]')).to_have_count(0)


def test_tasks_in_a_browser(served_tasks_app: str, tasks_db: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("WAOOAW_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            # tall: Streamlit scrolls inside its own container, so a full-page screenshot shows only the viewport
            page = browser.new_page(viewport={"width": 1400, "height": 2600})
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)  # a Streamlit rerun runs the embedded worker too
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # Home, then the Tasks page through the sidebar
            page.goto(served_tasks_app)
            page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Tasks").click()
            expect(page).to_have_url(re.compile(r"/Tasks$"))
            expect(page.get_by_role("heading", name="Start an instance")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Nothing to do")).to_be_visible()  # a fresh database: an empty inbox
            expect(page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Acting as")).to_have_value(
                "Marketing lead (marketing-lead)")
            expect(page.get_by_role("heading", name="Inbox of marketing-lead")).to_be_visible()
            settle(page)

            # start a marketing campaign with the variables its form declares
            page.get_by_role("combobox", name="Design", exact=True).click()
            page.get_by_role("option", name="marketing_campaign", exact=True).click()
            start_form = page.locator('[data-testid="stForm"]').filter(has=page.get_by_role("button", name="Start"))
            expect(start_form.get_by_label("campaign", exact=True)).to_be_visible()
            settle(page)  # the first design's fields gone
            start_form.get_by_label("campaign", exact=True).fill("spring launch")
            start_form.get_by_label("Business key (optional)").fill("E2E-1")
            start_form.get_by_role("button", name="Start").click()
            expect(page.get_by_text("Started marketing_campaign.")).to_be_visible()

            # its approval lands in the inbox (the content agents have run)
            complete_form = page.locator('[data-testid="stForm"]').filter(
                has=page.get_by_role("button", name="Complete"))
            expect(complete_form).to_be_visible()
            settle(page)
            check = Engine(tasks_db, principal=Principal.system())
            (row,) = check.instances().to_dict("records")
            assert row["status"] == "running" and check.instance(row["id"]).active_nodes == ["approval"]
            (task,) = check.inbox("marketing-lead")
            page.screenshot(path=shots / "tasks_e2e_1_inbox.png")

            # Complete without the required answer: an error, and the task stays
            complete_form.get_by_role("button", name="Complete").click()
            expect(page.get_by_text("'approved' is required")).to_be_visible()
            settle(page)
            expect(complete_form).to_be_visible()
            assert [t["id"] for t in check.inbox("marketing-lead")] == [task["id"]]
            assert check.instance(row["id"]).status == "running"
            page.screenshot(path=shots / "tasks_e2e_2_required.png")

            # yes, then Complete: the task closes and the instance runs to its end
            complete_form.get_by_text("yes", exact=True).click()
            complete_form.get_by_role("button", name="Complete").click()
            expect(page.get_by_text(f"Task {task['id']} completed.")).to_be_visible()
            expect(page.get_by_text("Nothing to do")).to_be_visible()
            settle(page)
            page.screenshot(path=shots / "tasks_e2e_3_completed.png")

            view = check.instance(row["id"])
            assert view.status == "completed" and view.variables["approved"] is True
            assert view.variables["campaign"] == "spring launch" and view.business_key == "E2E-1"
            assert not check.inbox("marketing-lead")
            assert not errors, errors
        finally:
            browser.close()
