"""Tasks: run designs live on the engine and work the inbox (claim, delegate, complete with a form)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from app.engine_session import (
    DB_ENV,
    DEFAULT_DB,
    DEFAULT_USER,
    audit_table,
    drive,
    field_label,
    form_values,
    inbox_table,
    instance_label,
    instances_table,
    is_overdue,
    open_engine,
    people,
    start_values,
    task_label,
    token_overlay,
)
from engine.errors import EngineError
from engine.render import to_dot

st.set_page_config(page_title="Tasks · waooaw", layout="wide")
st.title("Tasks")


@st.cache_resource(show_spinner="Opening the engine and deploying the library…")
def live_engine(url: str) -> tuple[Any, list[str]]:
    return open_engine(url)


url = os.environ.get(DB_ENV, DEFAULT_DB)
engine, deploy_problems = live_engine(url)
for problem in deploy_problems:
    st.warning(f"Not deployed: {problem}")
drive(engine)  # time passes between page loads: fire what fell due (timers, SLA escalations)
definitions = {name: engine.definition(name) for name in engine.definitions()}
known_users, known_groups = people(definitions.values())
st.caption(f"Engine on `{url}` ({DB_ENV}). The worker is embedded: every page load and every action runs the due "
           "jobs (demo agents from `designs/agents.py`, timers, SLA escalations) until the engine is idle.")


def act(message: str, action: Any, *args: Any, **kwargs: Any) -> None:
    """Do an engine action, run the worker, and rerun with ``message``; an error is shown and nothing changes."""
    try:
        action(*args, **kwargs)
    except (EngineError, ValueError) as exc:  # FormError is an EngineError
        st.error(str(exc))
        return
    drive(engine)
    st.session_state["tasks_flash"] = message
    st.rerun()


with st.sidebar:
    user = st.text_input("You are", value=DEFAULT_USER, key="tasks_user").strip()
    st.caption("People named in the designs: " + ", ".join(f"`{u}`" for u in known_users))
    groups = st.multiselect("Your groups", known_groups, key="tasks_groups")

if flash := st.session_state.pop("tasks_flash", None):
    st.success(flash)

inbox_col = st.container()  # the inbox first and full width; the start form below it
start_col = st.columns(2, gap="large")[0]

with start_col:
    st.subheader("Start an instance")
    name = st.selectbox("Design", list(definitions), key="tasks_design")
    definition = definitions[name]
    with st.form(f"tasks_start:{name}"):
        raw: dict[str, Any] = {}
        for decl in definition.variables:
            key, label = f"tasks_var:{name}:{decl.name}", decl.name + (" *" if decl.required else "")
            help_ = f"{decl.type}" + (f": {decl.description}" if decl.description else "")
            if decl.type in ("integer", "number"):
                raw[decl.name] = st.number_input(label, value=None, step=1 if decl.type == "integer" else None,
                                                 key=key, help=help_)
            elif decl.type == "boolean":  # a radio can stay unset: the process decides, not the start form
                raw[decl.name] = st.radio(label, [True, False], index=None, horizontal=True, key=key, help=help_,
                                          format_func=lambda v: "yes" if v else "no")
            else:
                raw[decl.name] = st.text_input(label, key=key, help=help_ + (
                    " (JSON)" if decl.type in ("object", "array") else ""))
        business_key = st.text_input("Business key (optional)", key=f"tasks_bkey:{name}")
        if st.form_submit_button("Start", type="primary", key=f"tasks_start_button:{name}"):
            def start() -> None:
                started = engine.start(name, start_values(definition, raw), business_key=business_key.strip() or None,
                                       actor=user or None)
                st.session_state["tasks_instance_pick"] = started  # show it below (that widget comes later)
            act(f"Started {name}.", start)

with inbox_col:
    st.subheader(f"Inbox of {user or '…'}")
    now = datetime.now(UTC)
    tasks = engine.inbox(user, groups) if user else []
    if not tasks:
        st.info("Nothing to do: no open task is assigned to you or offered to one of your groups.")
    else:
        st.dataframe(inbox_table(tasks, now), hide_index=True, key="tasks_inbox")
        by_id = {t["id"]: t for t in tasks}
        task_id = st.selectbox("Task", list(by_id), key="tasks_task", format_func=lambda i: task_label(by_id[i], now))
        task = by_id[task_id]
        if is_overdue(task, now):
            st.warning("Overdue: its SLA has passed" + (" and it was escalated." if task["escalated"] else "."))
        buttons = st.columns([3, 1, 1], vertical_alignment="bottom")
        delegate_to = buttons[0].text_input("Delegate to", key="tasks_delegate_to", placeholder="a user name")
        if buttons[1].button("Delegate", key="tasks_delegate", disabled=not delegate_to.strip()):
            act(f"Task {task_id} delegated to {delegate_to.strip()}.", engine.delegate, task_id, delegate_to.strip(),
                user, groups)
        if task["assignee"] is None and buttons[2].button("Claim", key="tasks_claim"):
            act(f"You claimed task {task_id}.", engine.claim, task_id, user, groups)
        if (task["assignee"] == user and task["candidate_groups"]
                and buttons[2].button("Unclaim", key="tasks_unclaim")):
            act(f"Task {task_id} is back with {', '.join(task['candidate_groups'])}.", engine.unclaim, task_id, user)

        with st.form(f"tasks_complete:{task_id}"):
            st.markdown(f"**{task['title']}** (`{task['node_id']}`)" + ("  \n\\* required" if any(
                f.get("required") for f in task["form"]) else ""))
            values: dict[str, Any] = {}
            for field in task["form"]:
                key, label, kind = f"tasks_field:{task_id}:{field['name']}", field_label(field), field["type"]
                default = field.get("default")
                if kind == "boolean":
                    values[field["name"]] = st.radio(label, [True, False], key=key, horizontal=True,
                                                     index=None if default is None else [True, False].index(default),
                                                     format_func=lambda v: "yes" if v else "no")
                elif kind in ("integer", "number"):
                    values[field["name"]] = st.number_input(label, value=default, key=key,
                                                            step=1 if kind == "integer" else None)
                elif kind == "enum":
                    choices = field.get("choices") or []
                    values[field["name"]] = st.selectbox(label, choices, key=key, index=choices.index(default)
                                                         if default in choices else None)
                elif kind == "date":
                    values[field["name"]] = st.date_input(label, value=default, key=key)
                elif kind == "text":
                    values[field["name"]] = st.text_area(label, value=default or "", key=key)
                else:
                    values[field["name"]] = st.text_input(label, value=default or "", key=key)
            if not task["form"]:
                st.caption("This task has no form: completing it just moves the instance on.")
            if st.form_submit_button("Complete", type="primary", key=f"tasks_complete_button:{task_id}"):
                act(f"Task {task_id} completed.", engine.complete_task, task_id, form_values(task["form"], values),
                    actor=user or None, groups=groups)

st.divider()
st.subheader("Instances")
table = instances_table(engine.instances())
if table.empty:
    st.info("No instances yet: start one above.")
else:
    st.dataframe(table, hide_index=True, key="tasks_instances")
    rows = {row["id"]: row for row in table.to_dict("records")}
    instance_id = st.selectbox("Instance", list(rows), key="tasks_instance_pick",
                               format_func=lambda i: instance_label(rows[i]))
    view = engine.instance(instance_id)
    drawing, details = st.columns([3, 2])
    with drawing:
        shown = engine.definition(view.definition, view.version)
        st.graphviz_chart(to_dot(shown, **token_overlay(view.active_nodes)), width="stretch")
        st.caption("Highlighted, with a badge: the nodes holding a token now.")
    with details:
        st.markdown(f"**{view.status}** · active: {', '.join(f'`{n}`' for n in view.active_nodes) or 'none'}"
                    + (f"  \nerror: {view.error}" if view.error else ""))
        for incident in view.incidents:
            if incident.get("resolved_at") is None:
                st.error(f"Incident at `{incident['node_id']}`: {incident['error']}")
        st.json(view.variables, expanded=True)
    st.dataframe(view.history, hide_index=True, key="tasks_history")

st.divider()
st.subheader("SLA")
st.dataframe(engine.sla_stats(), hide_index=True, key="tasks_sla")
st.caption("Task audit trail, last 50 actions (newest first)")
st.dataframe(audit_table(engine.task_audit()), hide_index=True, key="tasks_audit")
