"""Instance: one instance's diagram with its tokens, the path taken, variable history, tasks, timers, incidents
(Retry, Cancel) and "send message" through Engine.correlate."""

from __future__ import annotations

import streamlit as st

from app.chrome import flash, page
from app.engine_session import token_overlay
from app.operations import (
    executions,
    incident_table,
    node_name,
    open_work,
    parse_correlation,
    parse_payload,
    path_taken,
    resolve_instance_id,
    task_audit,
    timers,
    variable_history,
    visited,
    waiting_messages,
    when,
)
from app.widgets import act
from engine.errors import EngineError
from engine.render import to_dot
from engine.runtime.ids import short_id

ctx = page("Instance", ":material/account_tree:")
engine = ctx.engine

if "instance_pick" not in st.session_state:  # a deep link ?id=<instance> first, then the one picked on Runs
    st.session_state["instance_pick"] = st.query_params.get("id") or st.session_state.get("instance_id", "")
typed = st.text_input("Instance id", key="instance_pick",
                      placeholder="pick one on the Runs page, or paste an id")
instance_id = typed.strip()
if not instance_id:
    st.info("Open an instance from the Runs page (select its row) or paste its id.", icon=":material/list_alt:")
    st.stop()
try:
    instance_id = resolve_instance_id(engine, instance_id)  # the short id the other pages show works too
    view = engine.instance(instance_id)
except EngineError as exc:
    st.error(str(exc))
    st.stop()
st.session_state["instance_id"] = instance_id
st.query_params["id"] = instance_id  # the address is a link to this instance: a reload or a new tab shows it
definition = engine.definition(view.definition, view.version)


def named(node_id: str) -> str:
    """A node as this page names it: its name (else its id in words), never a modeler's random id."""
    return f"**{node_name(definition, node_id)}**"


status_icon = {"running": ":material/sync:", "completed": ":material/check_circle:",
               "failed": ":material/error:", "cancelled": ":material/cancel:"}.get(view.status, ":material/info:")
head = st.container(horizontal=True)
head.badge(view.status, icon=status_icon, color={"completed": "green", "failed": "red", "running": "blue"}
           .get(view.status, "gray"))
head.markdown(f"**{view.definition}** v{view.version}" + (f" · key `{view.business_key}`" if view.business_key else "")
              + f" · started {when(view.started_at)}"
              + (f" · ended {when(view.ended_at)}" if view.ended_at else "") + f" · {view.steps} steps")
if view.error:
    st.error(view.error)


def _open(other: str) -> None:  # a callback: runs before the page, so the id box can take the new id
    st.session_state["instance_pick"] = other


if view.parent or view.children:  # call activities: the process that called this one, the ones it called
    links = st.container(horizontal=True)
    if view.parent:
        links.button(f"Called by {view.parent}", key="open_parent", icon=":material/north_west:",
                     on_click=_open, args=(view.parent,))
    for child in view.children:
        links.button(f"Calls {child}", key=f"open_child_{child}", icon=":material/south_east:",
                     on_click=_open, args=(child,))

# incidents can be acted on only while the instance runs (Engine.retry refuses otherwise)
open_incidents = [i for i in view.incidents if i.get("resolved_at") is None] if view.status == "running" else []
for incident in open_incidents:
    with st.container(border=True):
        st.markdown(f":material/report: Incident at {named(incident['node_id'])}: {incident['error']}")
        cols = st.columns([1, 1, 6])
        if cols[0].button("Retry", key=f"retry_{incident['id']}", icon=":material/replay:"):
            try:
                engine.retry(int(incident["id"]))
            except EngineError as exc:
                st.error(str(exc))
            else:
                ctx.runtime.drive()  # the retried call runs now: say at once if it failed again
                again = [i for i in engine.instance(instance_id).incidents
                         if i.get("resolved_at") is None and i["node_id"] == incident["node_id"]]
                if again:
                    st.session_state["flash_error"] = (f"Retried {named(incident['node_id'])}: it failed again "
                                                       f"({again[-1]['error']}). The instance waits as before.")
                    st.rerun()
                flash(f"Incident {incident['id']} retried: {named(incident['node_id'])} went through.")
                st.rerun()
        if cols[1].button("Cancel instance", key=f"cancel_{incident['id']}", icon=":material/cancel:"):
            act(ctx, f"Instance {short_id(instance_id)} cancelled.", engine.cancel, instance_id,
                f"cancelled by {ctx.user} (incident {incident['id']} at {incident['node_id']})")

drawing, side = st.columns([3, 2])
with drawing:
    if view.status == "running":
        st.graphviz_chart(to_dot(definition, **token_overlay(view.active_nodes)), width="stretch")
        st.caption("Highlighted, with a badge: where the tokens are now.")
    else:
        st.graphviz_chart(to_dot(definition, highlight=visited(engine, instance_id)), width="stretch")
        st.caption(f"Highlighted: the path the instance took before it was {view.status}.")
with side:
    pending = timers(engine, instance_id)
    waits = waiting_messages(engine, instance_id)
    work = open_work(engine, instance_id) if view.status == "running" else []
    st.markdown("**Waiting for**")
    if pending.empty and not waits and not work:
        st.caption("Nothing: no open human task, no agent call, no armed timer and no message subscription.")
    for item in work:
        if item["kind"] == "task":
            due = f", due {item['due']:%a %d %b %H:%M} UTC" if item["due"] is not None else ""
            st.markdown(f":material/person: human task {named(item['node'])} for {item['who']}{due}")
        elif item["kind"] == "work":
            running = f" (running on {item['who']})" if item["who"] else " (queued)"
            st.markdown(f":material/smart_toy: agent call at {named(item['node'])}{running}")
        else:
            st.markdown(f":material/outgoing_mail: message `{item['title']}` to send from {named(item['node'])}")
    for row in pending.itertuples():
        st.markdown(f":material/schedule: {row.purpose or 'timer'} timer at {named(row.node)} due "
                    f"{row.due:%a %d %b %H:%M} UTC")
    for wait in waits:
        key = f" (key `{wait['correlation']}`)" if wait["correlation"] is not None else ""
        st.markdown(f":material/mail: message `{wait['message']}`{key} at {named(wait['node'])}")
    if view.status == "running":
        with st.form("send_message"):
            st.markdown("**Send a message**")
            names = [w["message"] for w in waits]
            message = st.text_input("Message name", value=names[0] if names else "", key="msg_name")
            first_key = waits[0]["correlation"] if waits else None
            correlation = st.text_input("Correlation key", value="" if first_key is None else str(first_key),
                                        key="msg_key", help="As the process expects it; JSON if it parses.")
            payload = st.text_area("Payload (JSON object)", value="{}", key="msg_payload", height=80)
            if st.form_submit_button("Send", icon=":material/send:"):
                def send() -> str:
                    return engine.correlate(message.strip(), parse_correlation(correlation), parse_payload(payload))
                act(ctx, f"Message {message.strip()!r} delivered.", send)
        with st.expander("Set variables", icon=":material/edit:"):
            st.caption("Fix an incident's cause (a bad input, say), then Retry. Goes through Engine.set_variables: "
                       "needs the operator role, checked against the process's variable types, audited.")
            with st.form("set_variables"):
                values = st.text_area("Values (JSON object)", value="{}", key="set_vars_payload", height=80,
                                      help='e.g. {"pr_number": 7}')
                if st.form_submit_button("Set", icon=":material/save:"):
                    def set_values() -> None:
                        engine.set_variables(instance_id, parse_payload(values), actor=ctx.user)
                    act(ctx, "Variables set.", set_values)
        if not open_incidents and st.button("Cancel instance", key="cancel_instance", icon=":material/cancel:"):
            act(ctx, f"Instance {short_id(instance_id)} cancelled.", engine.cancel, instance_id,
                f"cancelled by {ctx.user}")

path_tab, variables_tab, tasks_tab, calls_tab, incidents_tab = st.tabs(
    ["Path taken", "Variables", "Human tasks", "Agent calls", "Incidents"])
with path_tab:
    st.dataframe(path_taken(engine, instance_id, definition), hide_index=True, key="instance_path")
with variables_tab:
    st.json(view.variables, expanded=True)
    st.markdown("**History** (who changed what, when)")
    st.dataframe(variable_history(view.history), hide_index=True, key="instance_variable_history")
with tasks_tab:
    st.dataframe(task_audit(engine, instance_id), hide_index=True, key="instance_task_audit")
with calls_tab:
    st.dataframe(executions(engine, instance_id, definition), hide_index=True, key="instance_executions")
with incidents_tab:
    if view.incidents:
        st.dataframe(incident_table(view.incidents), hide_index=True, key="instance_incidents")  # no traceback
    else:
        st.caption("No incidents.")
