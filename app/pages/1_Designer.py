"""Designer: draw a workflow on a BPMN canvas, edit its properties, see its problems, keep it in the workspace."""

from __future__ import annotations

from typing import Any

import streamlit as st
from pydantic import ValidationError

from app import auth, config
from app.components.bpmn_canvas import bpmn_canvas
from app.designer import (
    DesignerSession,
    deployment_note,
    flow_commands,
    hidden_fields,
    import_upload,
    node_commands,
    process_commands,
)
from app.properties import PanelContext, edit, flow_label, label_of
from app.support import UPLOAD_TYPES
from app.workspace import Workspace, WorkspaceError
from engine import limits
from engine.bpmn.ids import ASCII_ID
from engine.errors import AuthorizationError, DefinitionError
from engine.model import ProcessDefinition, from_yaml
from engine.model.nodes import NODE_CLASSES, SequenceFlow

CANVAS_KEY = "designer_canvas"
CANVAS_HEIGHT = 640  # px: with the compact bar above it, canvas and palette fit a 900 px high window
st.set_page_config(page_title="Designer · waooaw", layout="wide", initial_sidebar_state="collapsed")
# The canvas is the page, as in bpmn.io's and Camunda's modelers: little margin above it and at its sides, the
# bar one row, the problem list left-aligned and wrapped (long agent names included).
st.html("<style>[data-testid='stMainBlockContainer'] {padding: 3.5rem 1.5rem 2rem;}"
        "[data-testid='stMainBlockContainer'] > div {gap: 0.6rem;}"
        ".st-key-designer_title h3 {padding: 0; margin: 0; white-space: nowrap;}"
        ".st-key-designer_problems button {justify-content: flex-start; text-align: left;}"
        ".st-key-designer_problems button p {text-align: left; overflow-wrap: anywhere;}</style>")
principal = auth.require_principal(prefer_role="designer", compact=True)  # the sign-in page (or the persona) first
ws = Workspace(config.load().data_dir, principal, auth.accounts_db())  # writes checked by rule design.save
read_only = not ws.may_write
state = st.session_state
session: DesignerSession | None = state.get("designer")


# Fields whose widget already says what is wrong with them (the expression parser's message as it is typed).
SHOWN_BY_WIDGETS = {"condition", "correlation_key"}


def _pydantic(exc: ValidationError, shown: set[str] | frozenset[str] = frozenset()) -> str:
    """The model's refusal in words, without what a widget already showed."""
    return "; ".join(f"{label_of(str(e['loc'][-1])) if e['loc'] else 'Value'}: {e['msg'].removeprefix('Value error, ')}"
                     for e in exc.errors() if not (e["loc"] and e["loc"][-1] in shown))


# --- actions that replace the open design: asked first when it has unsaved changes ----------------------------


def perform(action: dict[str, Any]) -> None:
    kind = action["op"]
    try:
        if kind == "open":
            info = ws.info(action["name"])
            state.designer = DesignerSession.open(ws.load(action["name"]), name=action["name"],
                                                  saved_hash=info.content_hash)
        elif kind == "blank":
            info = ws.new_blank(action["name"])
            state.designer = DesignerSession.open(ws.load(info.name), name=info.name, saved_hash=info.content_hash)
        elif kind == "template":
            info = ws.new_from_template(action["template"], action["name"])
            state.designer = DesignerSession.open(ws.load(info.name), name=info.name, saved_hash=info.content_hash)
        elif kind == "import":
            state.designer = DesignerSession.open(action["definition"], name=None, saved=False)
        state.pop("designer_pending", None)
        state.designer_notice = action.get("notice")
    except (WorkspaceError, DefinitionError, AuthorizationError) as exc:
        state.designer_error = str(exc)


def request(action: dict[str, Any]) -> None:
    if session is not None and session.dirty:
        state.designer_pending = action
    else:
        perform(action)


def save_as(name: str) -> None:
    assert session is not None
    definition = session.reading.definition
    if definition is None:
        state.designer_error = "The design cannot be saved until it reads: fix the problems listed first."
        return
    try:
        if session.name == name:
            info = ws.save(name, definition, expected_hash=session.saved_hash)
        else:
            info = ws.create(name, definition)
        session.mark_saved(name, info.content_hash, ws.load(name))
        state.designer_notice = f"Saved as {name!r}."
    except (WorkspaceError, DefinitionError, AuthorizationError) as exc:
        state.designer_error = str(exc)


# --- the design bar --------------------------------------------------------------------------------------------

if read_only:
    auth.read_only_notice(principal, "design.save", "Creating, uploading, saving, renaming and deleting designs")
saved = ws.list()
bar = st.columns([1.1, 3, 1, 1, 1, 1, 1.4, 1], vertical_alignment="center")
with bar[0], st.container(key="designer_title"):
    st.markdown("### Designer")
with bar[1]:
    names = [d.name for d in saved]
    current = session.name if session is not None and session.name in names else None
    if state.get("designer_open_shown", "") != current:  # the picker names the open design (a new one too)
        state["designer_open_choice"] = state["designer_open_shown"] = current
    chosen = st.selectbox("Saved designs", names, index=names.index(current) if current else None,
                          key="designer_open_choice", placeholder="Open a saved design…",
                          label_visibility="collapsed")
with bar[2]:
    if st.button("Open", disabled=chosen is None or chosen == current, width="stretch"):
        request({"op": "open", "name": chosen})
if state.pop("designer_close_new", False):
    state["designer_new_popover"] = False  # Create was clicked: the popover closes, the new design shows
with bar[3], st.popover("New", width="stretch", key="designer_new_popover", on_change="rerun"):
    new_name = st.text_input("Name (becomes the process id)", key="designer_new_name", placeholder="my_design")
    template = st.selectbox("Start from", ["blank", *ws.templates()], key="designer_new_template",
                            format_func=lambda t: "a blank design" if t == "blank" else f"template: {t}")
    if st.button("Create", key="designer_create", type="primary", disabled=read_only):
        if template == "blank":
            request({"op": "blank", "name": new_name.strip()})
        else:
            request({"op": "template", "template": template, "name": new_name.strip()})
        state.designer_close_new = True
        st.rerun()
if state.pop("designer_close_upload", False):
    state["designer_upload_popover"] = False  # imported: the panel closes over the canvas showing the design
with bar[4], st.popover("Upload", width="stretch", key="designer_upload_popover", on_change="rerun"):
    upload = st.file_uploader(f"BPMN, YAML or JSON, up to {limits.current().max_file_bytes / 1e6:g} MB",
                              type=UPLOAD_TYPES, key="designer_upload")
    lenient = st.checkbox("Lenient: import what is supported and list what is left out", key="designer_lenient")
    if upload is not None and st.button("Import", key="designer_import", type="primary", disabled=read_only):
        try:
            definition, left_out = import_upload(upload.name, upload.getvalue(), lenient=lenient)
        except DefinitionError as exc:
            state.designer_error = f"{upload.name} does not import:\n\n" + "\n".join(
                f"- {p}" if p.where != "import" else
                "- To import the rest and see these listed as left out, tick **Lenient** and import again."
                for p in exc.problems)
        else:
            notice = f"Imported {upload.name}" + (
                "; left out or approximated:\n\n" + "\n".join(f"- {w}" for w in left_out) if left_out else ".")
            request({"op": "import", "definition": definition, "notice": notice})
            state.designer_close_upload = True  # a refused file keeps the panel open (to tick Lenient)
            st.rerun()

# The open design's status and the view switch, one row; filled once the canvas's report is read (below).
status_row, view_row = st.columns([5, 2], vertical_alignment="center")
# One container for questions and notices, so the canvas below keeps its place (and its frame).
notices = st.container()
with notices:
    if state.get("designer_pending"):
        pending = state.designer_pending
        st.warning(f"**{session.name or 'The open design' if session else ''}** has unsaved changes. "
                   "Discard them and continue?")
        yes, no, _ = st.columns([1, 1, 4])
        if yes.button("Discard changes", key="designer_discard"):
            perform(pending)
            st.rerun()
        if no.button("Cancel", key="designer_cancel"):
            state.pop("designer_pending", None)
            st.rerun()

    if state.get("designer_error"):
        st.error(state.pop("designer_error"))
    if state.get("designer_notice"):
        st.success(state.pop("designer_notice"))

session = state.get("designer")
if session is None and saved and "designer_closed" not in state:
    perform({"op": "open", "name": saved[0].name})  # a new visit (or a reload) reopens the latest design
    session = state.get("designer")
if session is None:
    st.info("Create a design with **New** (blank or from a template), open a saved one, or upload a BPMN, YAML "
            "or JSON file. Designs are kept in the workspace: " f"`{ws.root}`.")
    st.stop()

# The canvas's latest report (its widget value) is taken before anything is drawn, so the panel and the
# problem list below describe what the canvas shows now.
session.receive(state.get(CANVAS_KEY))
reading = session.reading
definition = reading.definition

with bar[5]:
    if st.button("Save", type="primary", disabled=read_only or (not session.dirty and session.name is not None),
                 width="stretch", key="designer_save"):
        if session.name is None:
            state.designer_error = "Give the design a name with **Save as** first."
        else:
            save_as(session.name)
        st.rerun()
with bar[6], st.popover("Save as / Rename", width="stretch"):
    target = st.text_input("Design name", key="designer_target_name",
                           value=session.name or (definition.id if definition else ""))
    left_b, right_b = st.columns(2)
    if left_b.button("Save as", key="designer_save_as", disabled=read_only):
        save_as(target.strip())
        st.rerun()
    if right_b.button("Rename", key="designer_rename", disabled=read_only or session.name is None):
        try:
            info = ws.rename(session.name, target.strip())
            session.mark_saved(info.name, info.content_hash, ws.load(info.name))
        except (WorkspaceError, DefinitionError, AuthorizationError) as exc:
            state.designer_error = str(exc)
        st.rerun()
with bar[7], st.popover("Delete", width="stretch", disabled=read_only or session.name is None):
    st.write(f"Delete **{session.name}** from the workspace? Deployed versions are not touched.")
    if st.button("Delete for good", key="designer_delete", type="primary"):
        try:
            ws.delete(session.name)
            state.pop("designer")
            state.designer_closed = True
            state.designer_notice = f"Deleted {session.name!r}."
        except (WorkspaceError, AuthorizationError) as exc:
            state.designer_error = str(exc)
        st.rerun()

title = session.name or "(not saved yet)"
mark = " · ● unsaved changes" if session.dirty else " · saved"
deployed = ws.deployed(session.name or definition.id) if session.name or definition else None  # read each run
status_row.caption(f"**{title}**{mark}" + (f" — {definition.label}" if definition else "")
                   + f" · {deployment_note(deployed, definition)}")
with view_row:
    view = st.segmented_control("View", ["Canvas", "YAML (advanced)"], default="Canvas", key="designer_view",
                                label_visibility="collapsed", width="stretch") or "Canvas"


# --- the property panel --------------------------------------------------------------------------------------


def agents_catalogue(current: ProcessDefinition | None) -> list[str]:
    import inspect

    import designs.agents as library_agents
    from engine.registry import registered

    found = set(registered())
    found |= {f"{library_agents.__name__}:{n}" for n, f in vars(library_agents).items()
              if inspect.isfunction(f) and f.__module__ == library_agents.__name__ and not n.startswith("_")}
    if current is not None:
        found |= {a for n in current.all_nodes() if isinstance(a := getattr(n, "agent", None), str)}
    return sorted(found)


def known_people() -> tuple[list[str], list[str]]:
    """User names and groups of the app's accounts (the demo people included), offered in the panel."""
    from app.people import demo_people

    users = {p.user for p in demo_people()}
    groups = {g for p in demo_people() for g in p.groups}
    for account in auth.accounts():
        users.add(account.name)
        groups.update(account.groups)
    return sorted(users), sorted(groups)


def panel(selected: str | None) -> None:
    assert definition is not None
    users, groups = known_people()
    ctx = PanelContext(agents=agents_catalogue(definition), variables=[v.name for v in definition.variables],
                       users=users, groups=groups,
                       activities=[n.id for n in definition.all_nodes() if n.is_activity],
                       handlers=[n.id for n in definition.all_nodes() if getattr(n, "for_compensation", False)])
    nodes, flows = definition.index.nodes, definition.index.flows
    if selected in nodes:
        ctx.outgoing = {f.id: flow_label(f, nodes) for f in definition.outgoing(selected)}
        node = nodes[selected]
        cls = NODE_CLASSES[node.kind]  # type: ignore[attr-defined]
        data = node.model_dump(mode="json")
        key = session.panel_key(selected, data)
        st.markdown(f"**{cls.__name__}** `{node.id}`")
        new_id = st.text_input("Id", node.id, key=f"{key}.id")
        values = edit(cls, data, key, ctx, hidden=hidden_fields(node))
        try:
            new = cls.model_validate({**data, **values, "id": new_id.strip()})
        except ValidationError as exc:
            message = _pydantic(exc, shown=SHOWN_BY_WIDGETS)
            if message:
                st.error(message)
            return
        if new.id != node.id and not ASCII_ID.match(new.id):
            st.error(f"{new.id!r}: ids on the canvas are ASCII letters, digits, '_', '-' and '.' (bpmn.io's rule); "
                     "a name can hold any text")
            return
        commands = node_commands(node, new)
        if commands:
            session.send(commands)
            session.expect(new.id, new.model_dump(mode="json"), data)
    elif selected in flows:
        flow = flows[selected]
        data = flow.model_dump(mode="json")
        key = session.panel_key(selected, data)
        st.markdown(f"**Sequence flow** `{flow.id}`: `{flow.source}` → `{flow.target}`")
        values = edit(SequenceFlow, data, key, ctx)
        source = nodes.get(flow.source)
        gateway = None
        if source is not None and hasattr(source, "default"):
            was = source.default == flow.id  # type: ignore[attr-defined]
            now = st.checkbox("Default flow (taken when no condition holds)", was, key=f"{key}.default")
            gateway = (source.id, was, now)
        try:
            new = SequenceFlow.model_validate({**data, **values})
        except ValidationError as exc:
            if {e["loc"][:1] for e in exc.errors()} != {("condition",)}:
                st.error(_pydantic(exc, shown=SHOWN_BY_WIDGETS))
                return
            # a condition that does not parse (its widget says why) still goes to the canvas, so what was typed is
            # kept and the flow is marked as an error until it is fixed
            new = SequenceFlow.model_validate({**data, **values, "condition": None})
            new = new.model_copy(update={"condition": values["condition"]})
        commands = flow_commands(flow, new, gateway)
        if commands:
            session.send(commands)
            session.expect(new.id, new.model_dump(mode="json"), data)
    elif selected:
        st.caption(f"`{selected}` is drawn on the canvas but is not a part of the model (an association, a "
                   "compensation marker or an element the model does not support); see the problems below.")
    else:
        data = definition.model_dump(mode="json")
        key = session.panel_key("__process__", data)
        st.markdown(f"**Process** `{definition.id}`")
        # no "version": the engine numbers versions as it deploys them (the status line shows the deployed one)
        values = edit(ProcessDefinition, data, key, ctx, hidden={"metadata", "version"})
        try:
            new = ProcessDefinition.model_validate({**data, **values})
        except ValidationError as exc:
            st.error(_pydantic(exc))
            return
        commands = process_commands(definition, new)
        if commands:
            session.send(commands)
            session.expect("__process__", new.model_dump(mode="json"), data)


def element_title(element: str) -> str:
    """An element as the problem list names it: its name; unnamed, what the app calls it (``Node.label``), with the
    id only when a modeler made it up (two "Exclusive gateway"s are told apart by it)."""
    from engine.model.ids import is_modeler_id

    node = definition.index.nodes.get(element) if definition is not None else None
    flow = definition.index.flows.get(element) if definition is not None and node is None else None
    if node is not None and (node.name or not is_modeler_id(element)):
        return node.label
    if node is not None:
        return f"{node.label} {element}"
    return flow.name if flow is not None and flow.name else element


def problems() -> None:
    if not reading.problems:
        st.success("No problems: the engine would deploy this design.")
        return
    errors = len(reading.errors)
    st.markdown(f"**Problems** · {errors} error(s), {len(reading.problems) - errors} warning(s)")
    for i, problem in enumerate(reading.problems):
        icon = {"error": ":red[**error**]", "warning": ":orange[**warning**]"}.get(problem.severity, "info")
        label = f"{icon} {element_title(problem.element) if problem.element else problem.where}: {problem.message}"
        if problem.element:
            if st.button(label, key=f"designer_problem:{i}", type="tertiary", help="Select it on the canvas"):
                session.select(problem.element)
        else:
            st.markdown(label)


if view == "Canvas":
    drawing, side = st.columns([5, 2])
    with side:
        selected = session.selected[0].removesuffix("_label") if len(session.selected) == 1 else None
        with st.container(height=CANVAS_HEIGHT - 220, border=True, key="designer_panel"):
            if definition is None:
                st.error("The canvas does not read as a design yet; fix the problems below.")
            else:
                panel(selected)
        with st.container(height=200, border=False, key="designer_problems"):
            problems()
    with drawing:
        bpmn_canvas(session.args(), height=CANVAS_HEIGHT, key=CANVAS_KEY)
        st.caption("Drag from the palette, connect from the context pad (the arrow beside a selected shape), "
                   "undo with Ctrl+Z. The mouse wheel scrolls the canvas (Shift+wheel sideways); Ctrl+wheel "
                   "(⌘+wheel on a Mac) or the buttons at the bottom right zoom. A selected shape's properties are on "
                   "the right.")
else:
    text = definition.to_yaml() if definition is not None else ""
    with st.form("designer_yaml"):
        edited = st.text_area("YAML", text, height=560, key=f"designer_yaml:{session.revision}:{hash(text)}")
        applied = st.form_submit_button("Apply to the canvas", type="primary")
    if applied and edited != text:
        try:
            new_definition = from_yaml(edited, "design.yaml")
        except DefinitionError as exc:
            st.error("The YAML does not load:\n\n" + "\n".join(f"- {p}" for p in exc.problems))
        else:
            from app.designer import to_canvas

            session.replace(to_canvas(new_definition))
            st.rerun()
    problems()

# --- downloads ----------------------------------------------------------------------------------------------

if definition is not None:
    from app.support import exports

    files = exports(definition)
    cols = st.columns([2, 2, 2, 3])  # wide enough for "Download BPMN" with the sidebar open
    cols[0].download_button("Download YAML", definition.to_yaml(), file_name=f"{definition.id}.yaml",
                            mime="application/yaml", key="designer_dl_yaml")
    json_name, json_text = files["JSON"]
    cols[1].download_button("Download JSON", json_text, file_name=json_name, mime="application/json",
                            key="designer_dl_json")
    bpmn_name, bpmn_text = files["BPMN"]
    if bpmn_name:
        cols[2].download_button("Download BPMN", bpmn_text, file_name=bpmn_name, mime="application/xml",
                                key="designer_dl_bpmn")
    else:
        cols[2].caption(bpmn_text)
