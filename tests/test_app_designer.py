"""The Designer: what the canvas's XML means (app/designer.py), the property panel's edits as canvas commands, and
the page's logic through AppTest (save, reload, switch designs, the unsaved-changes guard, problems listed).

AppTest cannot run the canvas's JavaScript: the tests post what the canvas would (its component value) into the
session, as the browser does; tests/test_app_designer_browser.py drives the real canvas in Chromium.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from app_support import APP
from streamlit.testing.v1 import AppTest

import designs
from app.designer import (
    DesignerSession,
    flow_commands,
    import_upload,
    node_commands,
    process_commands,
    read_canvas,
    to_canvas,
)
from app.properties import describe_timer
from engine.bpmn.typed import fields_of_trees
from engine.errors import DefinitionError
from engine.model import ProcessDefinition
from engine.model.nodes import SequenceFlow, ServiceTask, TimerCatchEvent, UserTask
from engine.model.timers import Timer
from engine.validate import validate

CANVAS = "designer_canvas"


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WAOOAW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def designer() -> AppTest:
    return AppTest.from_file(str(APP / "pages" / "1_Designer.py"), default_timeout=60).run()


def canvas_posts(at: AppTest, xml: str | None = None, selected: list[str] | None = None) -> AppTest:
    """What the canvas does after a change or a selection: post its XML; the page runs again."""
    session: DesignerSession = at.session_state["designer"]
    at.session_state[CANVAS] = {"seq": session.value_seq + 1, "revision": session.revision, "ack": session.ack,
                                "xml": xml or session.xml, "selected": selected or []}
    return at.run()


def status_line(at: AppTest) -> str:
    """The open design's status line above the canvas: "**name** · saved — title · deployed ..."."""
    (line,) = [c.value for c in at.caption if c.value.startswith("**")]
    return line


def renamed(xml: str, element: str, name: str) -> str:
    """The canvas's XML after a person renamed an element on the canvas."""
    from lxml import etree

    root = etree.fromstring(xml.encode())
    el = next(e for e in root.iter() if e.get("id") == element)
    el.set("name", name)
    return etree.tostring(root, encoding="unicode")


def two_step() -> ProcessDefinition:
    return ProcessDefinition.model_validate({
        "id": "two_step", "name": "Two step",
        "nodes": [{"id": "start", "kind": "start"},
                  {"id": "work", "kind": "service_task", "agent": "designs.agents:deploy"},
                  {"id": "end", "kind": "end"}],
        "flows": [{"id": "f1", "source": "start", "target": "work"}, {"id": "f2", "source": "work", "target": "end"}]})


# --- what the canvas means -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", designs.names())
def test_each_design_reads_back_from_the_canvas_unchanged(name: str) -> None:
    definition = designs.load_design(name)
    reading = read_canvas(to_canvas(definition))
    assert reading.definition == definition
    assert [(p.severity, p.message) for p in reading.problems if p.severity != "info"] == [
        (p.severity, p.message) for p in validate(definition)]


def test_problems_are_tied_to_their_elements() -> None:
    broken = two_step().model_dump()
    broken["flows"] = broken["flows"][:1]  # "work" leads nowhere, "end" is unreachable
    reading = read_canvas(to_canvas(ProcessDefinition.model_validate(broken)))
    assert reading.errors and not reading.deployable
    assert {p.element for p in reading.errors} >= {"end"}
    assert all(m["id"] for m in DesignerSession(to_canvas(ProcessDefinition.model_validate(broken))).args()["markers"])


def test_an_unfinished_drawing_still_reads_with_what_is_missing_listed() -> None:
    xml = to_canvas(two_step()).replace('<bpmn:serviceTask id="work"',
                                         '<bpmn:timerFoo id="x"/><bpmn:serviceTask id="work"')
    reading = read_canvas(xml)
    assert reading.definition is not None  # read leniently: the rest is still there
    assert any("timerFoo" in p.where or "timerFoo" in p.message for p in reading.problems)


def test_a_canvas_that_cannot_be_read_is_one_problem_not_a_crash() -> None:
    reading = read_canvas("<bpmn:definitions")
    assert reading.definition is None and reading.errors and "XML" in reading.errors[0].message


def test_panel_edits_become_small_canvas_commands() -> None:
    old = UserTask(id="approve", name="Approve")
    new = UserTask(id="approve", name="Approve it", assignee="alice", sla="PT4H",
                   form=[{"name": "approved", "type": "boolean", "required": True}])
    commands = node_commands(old, new)
    assert [c["op"] for c in commands] == ["name", "fields"]
    assert fields_of_trees(commands[1]["value"]) == {  # typed moddle trees the canvas builds elements from
        "assignee": "alice", "sla": "PT4H", "form": [{"name": "approved", "type": "boolean", "required": True}]}
    form = next(t for t in commands[1]["value"] if t["type"] == "waooaw:FormField")
    assert form["props"] == {"name": "approved", "type": "boolean", "required": True}  # a boolean, not "true"
    cleared = node_commands(new, old)[-1]["value"]
    assert cleared == [{"type": "waooaw:Properties", "props": {}}]  # a user task keeps the marker: ours, empty
    timer = node_commands(TimerCatchEvent(id="wait", timer={"duration": "P1D"}),
                          TimerCatchEvent(id="wait", timer={"cycle": "0 9 * * 1-5", "timezone": "Europe/Berlin"}))
    assert timer == [{"op": "timer", "id": "wait", "value": {"kind": "cycle", "text": "0 9 * * 1-5"}},
                     {"op": "fields", "id": "wait",
                      "value": [{"type": "waooaw:Timer", "props": {"timezone": "Europe/Berlin"}}]}]
    renamed_id = node_commands(ServiceTask(id="a", agent="x"), ServiceTask(id="b", agent="x"))
    assert renamed_id == [{"op": "id", "id": "a", "value": "b"}]
    flow = SequenceFlow(id="f", source="g", target="t")
    assert flow_commands(flow, flow.model_copy(update={"condition": "ok"}), ("g", False, True)) == [
        {"op": "condition", "id": "f", "value": "ok"}, {"op": "default", "id": "g", "value": "f"}]


def test_commands_are_sent_once_and_dropped_when_the_canvas_acknowledges_them() -> None:
    session = DesignerSession.open(two_step())
    session.send([{"op": "name", "id": "work", "value": "Deploy"}])
    session.send([{"op": "name", "id": "end", "value": "Done"}])
    first, second = [c["seq"] for c in session.args()["commands"]]
    assert first < second
    xml = renamed(session.xml, "work", "Deploy")
    assert session.receive({"seq": 1, "revision": session.revision, "ack": first, "xml": xml, "selected": ["work"]})
    assert [c["seq"] for c in session.commands] == [second] and session.selected == ["work"]
    assert session.reading.definition is not None and session.reading.definition.node("work").name == "Deploy"
    assert not session.receive({"seq": 1, "revision": session.revision, "ack": first, "xml": xml, "selected": []})
    # another design's session: its seqs go on above every seq sent before (the frame may stay and remember them)
    other = DesignerSession.open(two_step())
    other.send([{"op": "name", "id": "work", "value": "X"}])
    other.select("work")
    assert second < other.commands[0]["seq"] < other.select_request["seq"]
    old_revision = session.revision
    session.replace(to_canvas(two_step()))  # a re-import: what the old frame says next is about the old design
    assert not session.receive({"seq": 2, "revision": old_revision, "ack": 2, "xml": xml, "selected": []})


def test_timer_preview_in_plain_words() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)  # a Friday, two days before Berlin's DST change
    words, firings = describe_timer(Timer(cycle="0 9 * * 1-5", timezone="Europe/Berlin"), now)
    assert "09:00" in words and "Monday through Friday" in words and "Europe/Berlin" in words
    assert [f.isoformat() for f in firings] == ["2026-03-30T07:00:00+00:00", "2026-03-31T07:00:00+00:00",
                                                "2026-04-01T07:00:00+00:00"]
    assert describe_timer(Timer(duration="P7D"), now) == ("7 days after arrival", [])
    assert describe_timer(Timer(cycle="R3/PT1H"), now)[0] == "every 1 hour, 3 times"


# --- the page --------------------------------------------------------------------------------------------------


def buttons(at: AppTest) -> dict[str, Any]:
    return {b.label: b for b in at.button}


def create(at: AppTest, name: str, template: str = "blank") -> AppTest:
    at.text_input(key="designer_new_name").input(name)
    at.selectbox(key="designer_new_template").set_value(template)
    return at.button(key="designer_create").click().run()


def test_a_new_visit_offers_new_and_upload() -> None:
    at = designer()
    assert not at.exception
    assert "Create a design with **New**" in at.info[0].value


def test_new_save_reload_and_switch_with_the_unsaved_changes_guard(data_dir: Path) -> None:
    at = designer()
    at = create(at, "first_design")
    assert not at.exception
    session: DesignerSession = at.session_state["designer"]
    assert session.name == "first_design" and not session.dirty
    assert "saved" in status_line(at) and "unsaved" not in status_line(at)

    # a change on the canvas: unsaved, then saved to the workspace
    at = canvas_posts(at, renamed(session.xml, "end", "All done"))
    assert at.session_state["designer"].dirty and "unsaved changes" in status_line(at)
    at = at.button(key="designer_save").click().run()
    assert not at.exception and "Saved as 'first_design'" in at.success[0].value
    assert "All done" in (data_dir / "designs" / "first_design.yaml").read_text()
    assert not at.session_state["designer"].dirty

    # a new session (a reload) opens the latest design again
    again = designer()
    assert again.session_state["designer"].name == "first_design"
    assert again.session_state["designer"].reading.definition.node("end").name == "All done"

    # another design from a template; an unsaved change; switching asks first, Cancel keeps the work
    at = create(at, "review", template="pr_review")
    assert at.session_state["designer"].name == "review"
    at = canvas_posts(at, renamed(at.session_state["designer"].xml, "review", "Look at it"))
    at.selectbox(key="designer_open_choice").set_value("first_design").run()
    at = buttons(at)["Open"].click().run()
    assert any("unsaved changes" in w.value for w in at.warning) and at.session_state["designer"].name == "review"
    at = at.button(key="designer_cancel").click().run()
    assert at.session_state["designer"].name == "review" and at.session_state["designer"].dirty
    at = buttons(at)["Open"].click().run()
    at = at.button(key="designer_discard").click().run()
    assert at.session_state["designer"].name == "first_design"
    assert "Look at it" not in (data_dir / "designs" / "review.yaml").read_text()


def test_save_as_rename_and_delete(data_dir: Path) -> None:
    at = create(designer(), "draft")
    at.text_input(key="designer_target_name").input("copy")
    at = at.button(key="designer_save_as").click().run()
    assert at.session_state["designer"].name == "copy"
    assert {p.stem for p in (data_dir / "designs").glob("*.yaml")} == {"draft", "copy"}
    at.text_input(key="designer_target_name").input("final")
    at = at.button(key="designer_rename").click().run()
    assert at.session_state["designer"].name == "final"
    assert {p.stem for p in (data_dir / "designs").glob("*.yaml")} == {"draft", "final"}
    assert at.session_state["designer"].reading.definition.id == "final"  # the process id follows the name
    at = at.button(key="designer_delete").click().run()
    assert "designer" not in at.session_state and "Deleted 'final'" in at.success[0].value
    taken = create(designer(), "draft")
    assert "already exists" in taken.error[0].value


def test_problems_are_listed_and_a_click_selects_the_element() -> None:
    at = create(designer(), "broken")
    session: DesignerSession = at.session_state["designer"]
    xml = session.xml.replace('<bpmn:sequenceFlow id="start__end" sourceRef="start" targetRef="end"/>', "")
    assert xml != session.xml
    at = canvas_posts(at, xml)
    labels = [b.label for b in at.button if b.key and b.key.startswith("designer_problem:")]
    assert any("end" in label and "error" in label for label in labels), labels
    # the end event in words (Node.label), not its id
    first = next(b for b in at.button if b.key and b.key.startswith("designer_problem:") and "End:" in b.label)
    at = first.click().run()
    assert at.session_state["designer"].args()["select"]["id"] == "end"


def test_the_panel_edits_the_selected_element() -> None:
    at = create(designer(), "panel", template="pr_review")
    at = canvas_posts(at, selected=["deploy"])
    assert not at.exception
    name = next(t for t in at.text_input if t.label == "Name" and t.key and ":deploy:" in t.key)
    at = name.input("Ship it").run()
    commands = at.session_state["designer"].commands
    assert commands and commands[-1]["op"] == "name" and commands[-1]["value"] == "Ship it"


def test_a_gateway_default_is_picked_from_its_outgoing_flows() -> None:
    at = create(designer(), "default_pick", template="pr_review")
    at = canvas_posts(at, selected=["approved"])
    assert not at.exception
    box = next(s for s in at.selectbox if s.label == "Default")
    assert box.options == ["— (none)", "approved__deploy → Deploy", "approved__create_issue → Create issue"]
    assert box.value == "approved__create_issue"
    at = box.set_value("approved__deploy").run()
    command = at.session_state["designer"].commands[-1]
    assert (command["op"], command["value"]) == ("default", "approved__deploy")


def test_yaml_view_applies_to_the_canvas() -> None:
    at = create(designer(), "yaml_view")
    at.segmented_control(key="designer_view").set_value("YAML (advanced)").run()
    session: DesignerSession = at.session_state["designer"]
    revision = session.revision
    area = at.text_area[0]
    area.input(area.value.replace("name: Yaml view", "name: Edited as text"))
    at = at.button[[b.label for b in at.button].index("Apply to the canvas")].click().run()
    assert not at.exception
    session = at.session_state["designer"]
    assert session.revision != revision and session.reading.definition.name == "Edited as text"


def test_upload_strict_refuses_and_lenient_lists_what_was_left_out() -> None:
    xml = to_canvas(two_step()).replace('<bpmn:serviceTask id="work"',
                                         '<bpmn:scriptTask id="script"/><bpmn:serviceTask id="work"')
    with pytest.raises(DefinitionError, match="scriptTask"):
        import_upload("two.bpmn", xml.encode(), lenient=False)
    definition, left_out = import_upload("two.bpmn", xml.encode(), lenient=True)
    assert definition.node("work") and any("scriptTask" in w for w in left_out)
    yaml_definition, nothing = import_upload("two.yaml", two_step().to_yaml().encode(), lenient=False)
    assert yaml_definition == two_step() and nothing == []
    with pytest.raises(DefinitionError, match="UTF-8"):
        import_upload("two.yaml", b"\xff\xfe", lenient=False)


def test_a_bpmn_file_opens_with_its_own_layout() -> None:
    laid_out = read_canvas(to_canvas(two_step())).definition
    assert laid_out is not None
    moved = laid_out.model_dump()
    moved["nodes"][1]["metadata"]["bounds"] = [500, 400, 100, 80]
    xml = to_canvas(ProcessDefinition.model_validate(moved))
    assert 'bpmnElement="work"' in xml
    assert read_canvas(xml).definition.node("work").metadata["bounds"] == [500, 400, 100, 80]


@pytest.mark.parametrize("name", designs.names())
def test_the_panel_shows_every_element_without_changing_it(name: str) -> None:
    """The generated panel reads each element's values back exactly: looking sends no edit to the canvas."""
    definition = designs.load_design(name)
    at = AppTest.from_file(str(APP / "pages" / "1_Designer.py"), default_timeout=60)
    session = DesignerSession.open(definition)
    at.session_state["designer"] = session
    for element in [None, *(n.id for n in definition.all_nodes()), *(f.id for f in definition.all_flows())]:
        session.selected = [element] if element else []
        at.run()
        assert not at.exception, (element, at.exception)
        assert session.commands == [], (element, session.commands)


def test_an_upload_over_the_file_limit_gets_a_readable_message_and_imports_nothing(data_dir: Path) -> None:
    """Issue 14: the upload is measured before it is parsed; the message names the file and the limit."""
    from engine import limits

    with limits.override(max_file_bytes=1_000):
        at = designer()
        big = b"id: big\nnodes: []\n# " + b"x" * 2_000 + b"\n"
        at.file_uploader(key="designer_upload").set_value(("big.yaml", big, "application/yaml")).run()
        at.button(key="designer_import").click().run()
    shown = " ".join(e.value for e in at.error)
    assert "big.yaml does not import" in shown and f"{len(big):,} bytes" in shown and "max_file_bytes" in shown, shown
    assert "Traceback" not in shown and not at.exception
    assert not (data_dir / "designs" / "big.yaml").exists()


def test_streamlit_upload_size_follows_the_file_limit() -> None:
    """``.streamlit/config.toml``'s server.maxUploadSize is max_file_bytes in MiB, rounded up (``waooaw app``
    computes it from the limit in force)."""
    import tomllib

    from engine import limits
    from engine.cli import upload_mib

    config = tomllib.loads((APP.parent / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] == upload_mib() == 10
    assert upload_mib() * 1024 * 1024 >= limits.current().max_file_bytes
    with limits.override(max_file_bytes=50_000_000):
        assert upload_mib() == 48


def test_people_and_groups_are_offered_and_new_ones_accepted() -> None:
    at = create(designer(), "people", template="incident_response")
    at = canvas_posts(at, selected=["acknowledge"])
    assert not at.exception
    groups = next(m for m in at.multiselect if m.label == "Candidate groups")
    assert {"engineering", "on-call", "leadership"} <= set(groups.options)  # the demo people's groups
    assert groups.value == ["on-call"]
    assignee = next(s for s in at.selectbox if s.label == "Assignee")
    assert "engineering-manager" in assignee.options and assignee.value is None
    at = assignee.set_value("engineering-manager").run()
    commands = at.session_state["designer"].commands
    assert commands and commands[-1]["op"] == "fields"
    assert fields_of_trees(commands[-1]["value"])["assignee"] == "engineering-manager"


def test_a_condition_that_does_not_parse_is_kept_and_is_an_error_of_its_flow() -> None:
    at = create(designer(), "badcond", template="pr_review")
    session: DesignerSession = at.session_state["designer"]
    flow = next(f for f in session.reading.definition.all_flows() if f.condition)  # type: ignore[union-attr]
    at = canvas_posts(at, selected=[flow.id])
    box = next(t for t in at.text_input if t.label == "Condition")
    at = box.input("amount > and not approved").run()
    assert [e.value for e in at.error if "does not parse" in e.value] and not [
        e for e in at.error if "Value error" in e.value]  # said once, in the panel's words
    command = at.session_state["designer"].commands[-1]
    assert (command["op"], command["value"]) == ("condition", "amount > and not approved")  # kept, not dropped
    from app.designer import read_canvas

    xml = session.xml.replace(f">{flow.condition}<", ">amount &gt; and not approved<")
    problems = [p for p in read_canvas(xml).problems if p.element == flow.id]
    assert [p.severity for p in problems] == ["error"] and "does not parse" in problems[0].message


def test_a_condition_on_a_variable_nothing_sets_is_a_warning() -> None:
    from app.designer import read_canvas, to_canvas
    from engine.model import ProcessBuilder

    def design(form: bool) -> ProcessDefinition:
        b = ProcessBuilder("expense", variables={"approved": bool})
        fields = [{"name": "approved", "type": "boolean", "required": True}] if form else []
        gateway = b.start("start").user("approve", title="Approve", assignee="cto", form=fields).exclusive("ok")
        gateway.when("approved").end("paid")
        gateway.otherwise().end("refused")
        return b.build()

    warned = [p for p in read_canvas(to_canvas(design(form=False))).problems
              if "nothing in the design sets" in p.message]
    assert [p.element for p in warned] == ["ok__paid"]
    assert not [p for p in read_canvas(to_canvas(design(form=True))).problems
                if "nothing in the design sets" in p.message]  # the approver's form sets it


def test_panel_field_edits_applied_as_the_canvas_does_read_back_as_meant(node: str, tmp_path: Path) -> None:
    """The panel's ``fields`` commands, applied by the canvas's own code (commands.js, under node with
    bpmn-moddle) to the canvas XML, read back as the edited definition: typed elements, stale standard forms
    (humanPerformer, potentialOwner, camunda:formData) not read over them."""
    import json
    import subprocess

    from app.components.bpmn_canvas.bundle import FRONTEND
    from engine.bpmn import from_bpmn, to_bpmn

    before = designs.load_design("incident_response")
    task = next(n for n in before.all_nodes() if n.kind == "user_task")
    edited = type(task).model_validate({**task.model_dump(), "assignee": None, "candidate_groups": ["leadership"],
                                        "sla": "PT4H", "form": [{"name": "ok", "type": "boolean", "required": True}]})
    after_process = before.model_copy(update={"version": before.version + 1})
    edits = {task.id: next(c for c in node_commands(task, edited) if c["op"] == "fields")["value"],
             before.id: next(c for c in process_commands(before, after_process) if c["op"] == "fields")["value"]}
    source, out = tmp_path / "canvas.bpmn", tmp_path / "saved.bpmn"
    source.write_text(to_bpmn(before), encoding="utf-8")
    (tmp_path / "edits.json").write_text(json.dumps(edits))
    run = subprocess.run([node, str(FRONTEND / "tools" / "panel.mjs"), str(source), str(tmp_path / "edits.json"),
                          str(out)], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["warnings"] == []
    got = from_bpmn(out.read_bytes())
    assert got.version == before.version + 1
    node_after = got.node(task.id)
    for name in ("assignee", "candidate_groups", "sla", "form", "title"):
        assert getattr(node_after, name) == getattr(edited, name), name


def test_the_status_line_shows_the_latest_deployed_version(data_dir: Path) -> None:
    """Deployed elsewhere (the Deployments page) while the Designer is open: the Designer's next run shows the
    version just deployed, not the one before nor the number written in the design."""
    from app.operations import deploy_saved
    from app.workspace import Workspace
    from engine.runtime import Engine
    from engine.security import Principal

    at = create(designer(), "review", template="pr_review")
    assert "not deployed yet" in status_line(at)
    engine = Engine(f"sqlite:///{data_dir / 'waooaw.db'}", principal=Principal.system())
    workspace = Workspace(data_dir)
    assert deploy_saved(engine, workspace, "review").definition.version == 1
    at.run()
    assert "deployed as **version 1**" in status_line(at)

    # a change saved in the Designer and deployed again: version 2 is shown
    at = canvas_posts(at, renamed(at.session_state["designer"].xml, "review", "Look closer"))
    assert "changed since: deploying it makes version 2" in status_line(at)
    at = at.button(key="designer_save").click().run()
    assert "latest deployed: **version 1**" in status_line(at)
    assert deploy_saved(engine, workspace, "review").definition.version == 2
    at.run()
    assert "deployed as **version 2**" in status_line(at) and "version 1" not in status_line(at)
    # the design's own version field (1, whatever was deployed) is not offered in the process's panel
    assert not [n for n in at.number_input if n.label == "Version"]
    assert at.session_state["designer"].reading.definition.version == 1


def test_the_canvas_shows_the_design_s_names_and_save_and_reload_agree(data_dir: Path) -> None:
    """The labels the exporter makes up for other modelers are not names: the canvas gets only the names the design
    has (each unnamed node's label goes as a grey placeholder, never into the XML), so what the canvas shows
    before a save is what it shows after a reload, and a name typed on the canvas stays a name."""
    from engine.bpmn import to_bpmn

    at = create(designer(), "review", template="pr_review")
    session: DesignerSession = at.session_state["designer"]
    assert 'name="Issue created"' not in session.xml and "waooaw:labels" not in session.xml
    assert 'name="Deploy"' in session.xml  # a name the design has
    placeholders = session.args()["placeholders"]
    assert placeholders["issue_created"] == "Issue created" and "deploy" not in placeholders
    assert 'name="Issue created"' in to_bpmn(session.reading.definition)  # the download still labels it

    # one end named on the canvas with the very text of its placeholder, the other left alone; save; reload
    at = canvas_posts(at, renamed(session.xml, "deployed", "Deployed"))
    at = at.button(key="designer_save").click().run()
    assert not at.exception
    before = at.session_state["designer"]
    again = designer().session_state["designer"]
    for shown in (before, again):
        d = shown.reading.definition
        assert d.node("deployed").name == "Deployed" and d.node("issue_created").name is None
        assert 'name="Deployed"' in shown.xml and 'name="Issue created"' not in shown.xml
        assert "deployed" not in shown.args()["placeholders"]
        assert shown.args()["placeholders"]["issue_created"] == "Issue created"
    assert not again.dirty


def test_an_element_a_modeler_named_gets_no_placeholder_and_pages_show_its_kind() -> None:
    """A node bpmn-js just placed (``Activity_1wkter0``) has no placeholder (its shape says as much); a user task
    with a title shows the title; every page names a node by ``Node.label``, never by a modeler's random id."""
    from app.designer import placeholders
    from app.operations import node_name
    from app.sim_view import node_label

    d = ProcessDefinition.model_validate({
        "id": "p", "nodes": [{"id": "StartEvent_1abcdef", "kind": "start"},
                             {"id": "Activity_1wkter0", "kind": "user_task", "title": "Check the file"},
                             {"id": "Gateway_09ddg4m", "kind": "exclusive_gateway", "name": "Complete?"},
                             {"id": "Event_0zzzzzz", "kind": "end"}],
        "flows": [{"id": "f1", "source": "StartEvent_1abcdef", "target": "Activity_1wkter0"},
                  {"id": "f2", "source": "Activity_1wkter0", "target": "Gateway_09ddg4m"},
                  {"id": "f3", "source": "Gateway_09ddg4m", "target": "Event_0zzzzzz"}]})
    assert placeholders(d) == {"Activity_1wkter0": "Check the file"}
    for show in (node_name, node_label):
        assert show(d, "Gateway_09ddg4m") == "Complete?"
        assert show(d, "Event_0zzzzzz") == "End event"
        assert show(d, "Activity_1wkter0") == "Check the file"


def placed(xml: str, tag: str, ident: str, after: str, name: str | None = None) -> str:
    """The canvas's XML after a person placed a ``tag`` element ``ident`` (bpmn-js's random id) after ``after``."""
    from lxml import etree

    root = etree.fromstring(xml.encode())
    bpmn = "http://www.omg.org/spec/BPMN/20100524/MODEL"
    process = root.find(f"{{{bpmn}}}process")
    el = etree.SubElement(process, f"{{{bpmn}}}{tag}", id=ident)
    if name:
        el.set("name", name)
    etree.SubElement(process, f"{{{bpmn}}}sequenceFlow", id=f"Flow_{ident[-7:]}", sourceRef=after, targetRef=ident)
    return etree.tostring(root, encoding="unicode")


def test_a_node_named_for_the_first_time_gets_a_readable_id() -> None:
    """bpmn-js gives a new node a random id (Activity_1wkter0); when it is first named, and nothing outside the canvas
    can refer to it yet, its id becomes the name's slug (check_documents), unique and ASCII; a node of the saved
    design, an imported name or a renamed id undone keeps its id."""
    from app.designer import readable_id

    assert readable_id("Check documents", set()) == "check_documents"
    assert readable_id("Prüfung (2. Runde)", {"prufung_2_runde"}) == "prufung_2_runde_2"
    assert readable_id("审批", set()) is None and readable_id("42", set()) is None

    at = create(designer(), "draft")
    session: DesignerSession = at.session_state["designer"]
    at = canvas_posts(at, placed(session.xml, "serviceTask", "Activity_1wkter0", "start"))
    assert not at.session_state["designer"].commands  # placed, not named: nothing to say yet
    at = canvas_posts(at, renamed(at.session_state["designer"].xml, "Activity_1wkter0", "Check documents"))
    session = at.session_state["designer"]
    assert {"op": "id", "id": "Activity_1wkter0", "value": "check_documents"} in [
        {k: c[k] for k in ("op", "id", "value")} for c in session.commands]

    # the canvas applied it (and the rename was undone): the same node is not renamed again
    undone = session.xml
    session.ack = session.commands[-1]["seq"]
    at = canvas_posts(at, renamed(undone, "Activity_1wkter0", "Check the documents"))
    assert not [c for c in at.session_state["designer"].commands if c["op"] == "id"]

    # a design opened with named modeler ids (an upload from Camunda): its ids stay
    upload = DesignerSession.open(ProcessDefinition.model_validate({
        "id": "p", "nodes": [{"id": "StartEvent_1abcdef", "kind": "start", "name": "Go"},
                             {"id": "Event_0zzzzzz", "kind": "end", "name": "Done"}],
        "flows": [{"id": "Flow_1aaaaaa", "source": "StartEvent_1abcdef", "target": "Event_0zzzzzz"}]}), saved=False)
    upload.receive({"seq": 1, "revision": upload.revision, "ack": 0, "xml": upload.xml, "selected": []})
    assert not upload.commands


# --- designer polish: the panel agrees with validation, shows what applies, closes the upload ----------------


def hotel_booking() -> ProcessDefinition:
    """A booking whose compensation is a handler activity of the design (``cancel_hotel``, for_compensation)."""
    return ProcessDefinition.model_validate({
        "id": "hotel", "name": "Hotel",
        "nodes": [{"id": "start", "kind": "start"},
                  {"id": "book_hotel", "kind": "service_task", "agent": "designs.agents:deploy",
                   "compensation": "cancel_hotel"},
                  {"id": "cancel_hotel", "kind": "task", "for_compensation": True},
                  {"id": "end", "kind": "end"}],
        "flows": [{"id": "f1", "source": "start", "target": "book_hotel"},
                  {"id": "f2", "source": "book_hotel", "target": "end"}]})


def test_a_compensation_handler_activity_is_not_warned_about_as_an_agent() -> None:
    """``compensation: cancel_hotel`` names the design's handler activity: validation finds nothing wrong
    (engine.validate.handler_problems skips it) and the panel's picker says the same instead of warning that no
    agent 'cancel_hotel' resolves. A name that is neither still gets the warning."""
    from engine.validate import handler_problems

    assert handler_problems(hotel_booking()) == []
    at = create(designer(), "hotel")
    at = canvas_posts(at, to_canvas(hotel_booking()), selected=["book_hotel"])
    assert not at.exception
    assert not [w.value for w in at.warning if "cancel_hotel" in w.value]
    box = next(s for s in at.selectbox if s.label == "Compensation")
    assert box.value == "cancel_hotel" and "cancel_hotel (compensation handler activity)" in box.options
    assert any("compensation handler activity 'cancel_hotel'" in c.value for c in at.caption)
    at = box.set_value("other (type a name)…").run()
    at = next(t for t in at.text_input if t.label == "Compensation: name").input("no_such_agent").run()
    assert any("'no_such_agent' does not resolve" in w.value for w in at.warning)



def sub_processes() -> ProcessDefinition:
    """A plain, a transaction, an ad-hoc and an event sub-process."""
    def inner(p: str) -> dict[str, Any]:
        return {"nodes": [{"id": f"{p}_s", "kind": "start"}, {"id": f"{p}_e", "kind": "end"}],
                "flows": [{"id": f"{p}_f", "source": f"{p}_s", "target": f"{p}_e"}]}
    return ProcessDefinition.model_validate({
        "id": "subs", "name": "Subs",
        "nodes": [{"id": "start", "kind": "start"},
                  {"id": "plain", "kind": "sub_process", **inner("p")},
                  {"id": "tx", "kind": "sub_process", "transaction": True, **inner("t")},
                  {"id": "adhoc", "kind": "ad_hoc_sub_process", "nodes": [{"id": "a1", "kind": "task"}]},
                  {"id": "events", "kind": "sub_process", "triggered_by_event": True,
                   "nodes": [{"id": "es", "kind": "timer_start", "timer": {"duration": "PT1H"}},
                             {"id": "ee", "kind": "end"}],
                   "flows": [{"id": "ef", "source": "es", "target": "ee"}]},
                  {"id": "end", "kind": "end"}],
        "flows": [{"id": "f1", "source": "start", "target": "plain"}, {"id": "f2", "source": "plain", "target": "tx"},
                  {"id": "f3", "source": "tx", "target": "adhoc"}, {"id": "f4", "source": "adhoc", "target": "end"}]})


@pytest.mark.parametrize(("node", "shown", "hidden"), [
    ("plain", {"Triggered by event", "Transaction"}, set()),
    ("tx", {"Transaction"}, {"Triggered by event"}),
    ("adhoc", {"Cancel remaining"}, {"Triggered by event", "Transaction"}),
    ("events", {"Triggered by event"}, {"Transaction"}),
])
def test_the_panel_hides_fields_that_do_not_apply_to_the_kind(node: str, shown: set[str], hidden: set[str]) -> None:
    at = create(designer(), f"subs_{node}")
    at = canvas_posts(at, to_canvas(sub_processes()), selected=[node])
    assert not at.exception
    boxes = {c.label for c in at.checkbox}
    assert shown <= boxes and not hidden & boxes, boxes
    assert not at.session_state["designer"].commands  # showing the panel changed nothing


class Frame:
    """The canvas's frame as frontend/src/index.js keeps it while the page runs again: the revision it imported
    and the last command seq it applied. The frame stays on the page when another design is opened or created in
    the same tab; this one keeps its ``ack`` across designs (as the frame did before it reset it on a re-import),
    so the session alone must make every command of a new design newer than anything the frame applied."""

    def __init__(self) -> None:
        self.revision: int | None = None
        self.ack = 0
        self.seq = 0
        self.xml = ""
        self.applied: list[dict[str, Any]] = []
        self.select_seq = 0
        self.selected_by_python: list[str] = []

    def render(self, args: dict[str, Any]) -> None:
        if args["revision"] != self.revision:
            if self.revision is None:
                self.ack = args["ack"]
            self.revision, self.xml = args["revision"], args["xml"]
        for command in args["commands"]:
            if command["seq"] > self.ack:
                assert command["op"] == "name" and command["id"], command  # the only edits this test makes
                self.xml = renamed(self.xml, command["id"], command["value"])
                self.applied.append(command)
                self.ack = command["seq"]
        if args["select"] and args["select"]["seq"] > self.select_seq:
            self.select_seq = args["select"]["seq"]
            self.selected_by_python.append(args["select"]["id"])

    def post(self, at: AppTest, selected: list[str]) -> AppTest:
        """Draw the page's latest arguments, then report the XML and the selection; the page runs again."""
        self.render(at.session_state["designer"].args())
        self.seq += 1
        at.session_state[CANVAS] = {"seq": self.seq, "revision": self.revision, "ack": self.ack, "xml": self.xml,
                                    "selected": selected}
        at = at.run()
        self.render(at.session_state["designer"].args())
        return at


def rename_in_panel(at: AppTest, frame: Frame, element: str, name: str) -> AppTest:
    box = next(t for t in at.text_input if t.label == "Name" and t.key and f":{element}:" in t.key)
    at = box.input(name).run()
    return frame.post(at, [element])


def test_edits_after_new_reach_the_canvas_whose_frame_stayed() -> None:
    """A second design created in the same tab (the canvas's frame stays, remembering the last command it
    applied): the panel's first edits reach the canvas and the YAML, none is dropped as already applied, and a
    click in the problem list still selects."""
    at = create(designer(), "first", template="pr_review")
    frame = Frame()
    at = frame.post(at, ["deploy"])
    for i in range(1, 4):
        at = rename_in_panel(at, frame, "deploy", f"Ship {i}")
    assert at.session_state["designer"].reading.definition.node("deploy").name == "Ship 3"
    at = at.button(key="designer_save").click().run()
    at.session_state["designer"].select("deploy")
    at = frame.post(at, ["deploy"])
    assert frame.ack > 0 and frame.selected_by_python == ["deploy"]

    at = create(at, "second", template="pr_review")  # New, in the same tab: the frame stays
    assert at.session_state["designer"].name == "second"
    at = frame.post(at, ["deploy"])
    for i in range(1, 3):
        at = rename_in_panel(at, frame, "deploy", f"Kick off {i}")
        assert frame.applied[-1]["value"] == f"Kick off {i}"
        session: DesignerSession = at.session_state["designer"]
        assert session.reading.definition.node("deploy").name == f"Kick off {i}"
        assert "Kick off" in session.reading.definition.to_yaml() and not session.commands
    session.select("deploy")
    at = frame.post(at, [])
    assert frame.selected_by_python == ["deploy", "deploy"]


def test_a_successful_import_closes_the_upload_panel() -> None:
    """Import puts the design on the canvas and closes the Upload panel over it; a refused file keeps the panel
    open with its message (to tick Lenient and import again)."""
    at = designer()
    at.session_state["designer_upload_popover"] = True  # the person opened Upload
    bad = to_canvas(two_step()).replace('<bpmn:serviceTask id="work"',
                                        '<bpmn:scriptTask id="script"/><bpmn:serviceTask id="work"')
    at.file_uploader(key="designer_upload").set_value(("two.bpmn", bad.encode(), "application/xml")).run()
    at = at.button(key="designer_import").click().run()
    assert any("two.bpmn does not import" in e.value for e in at.error)
    assert at.session_state["designer_upload_popover"] is True
    at.file_uploader(key="designer_upload").set_value(("two.yaml", two_step().to_yaml().encode(),
                                                       "application/yaml")).run()
    at = at.button(key="designer_import").click().run()
    assert not at.exception
    assert at.session_state["designer"].reading.definition.id == "two_step"
    assert any("Imported two.yaml" in s.value for s in at.success)
    assert at.session_state["designer_upload_popover"] is False
