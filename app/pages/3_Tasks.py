"""Tasks: the inbox of the person you act as (claim, delegate, complete with a form) and starting instances."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.chrome import page, prefer_deployed, remember
from app.engine_session import (
    claim_first,
    countdown,
    form_values,
    inbox_table,
    is_overdue,
    task_context,
    task_label,
    variables_table,
    why_gone,
)
from app.widgets import act, start_form, task_form_fields
from engine.runtime.ids import short_id

ctx = page("Tasks", ":material/task_alt:")
engine, user, groups = ctx.engine, ctx.user, ctx.groups
now = ctx.runtime.now()

st.subheader(f"Inbox of {user}")
tasks = {t["id"]: t for t in engine.inbox(user, groups)}
# The task you are looking at stays selected even when someone else takes it: its last view is kept here.
working: dict[str, Any] | None = st.session_state.get("tasks_working")
if working is not None and (working.get("_user") != user):
    working = None
if not tasks and working is None:
    st.info("Nothing to do: no open task is assigned to you or offered to one of your groups.",
            icon=":material/inbox:")
else:
    if tasks:
        st.dataframe(inbox_table(list(tasks.values()), now), hide_index=True, key="tasks_inbox")
    options = list(tasks) + ([working["id"]] if working is not None and working["id"] not in tasks else [])
    if st.session_state.get("tasks_task") not in options:
        st.session_state["tasks_task"] = working["id"] if working is not None else options[0]
    known = {i: tasks.get(i) or (working if working and working["id"] == i else None) for i in options}
    task_id = st.selectbox("Task", options, key="tasks_task",
                           format_func=lambda i: task_label(known[i], now) if known[i] else f"#{i}")
    task = known[task_id]
    assert task is not None
    gone = task_id not in tasks
    st.session_state["tasks_working"] = {**task, "_user": user}
    if gone:  # escalated, delegated, cancelled or done by someone else: read-only, with where to go next
        st.warning(why_gone(engine, task_id) + " It left your inbox while you had it open: nothing you entered "
                   "was saved.", icon=":material/person_alert:")
        same = [t for t in tasks.values() if t["instance_id"] == task["instance_id"]]
        nav = st.columns([1, 1, 3])
        if same and nav[0].button(f"Open #{same[0]['id']} {same[0]['title']}", key="tasks_follow", type="primary"):
            st.session_state.pop("tasks_working", None)
            st.session_state["tasks_task"] = same[0]["id"]
            st.rerun()
        if nav[1].button("Next task", key="tasks_dismiss"):
            st.session_state.pop("tasks_working", None)
            st.session_state.pop("tasks_task", None)
            st.rerun()
    badges = st.container(horizontal=True)
    if task.get("escalated"):
        badges.badge("Escalated", icon=":material/priority_high:", color="red")
    if task.get("due_at") is not None and not gone:
        badges.badge(countdown(task["due_at"], now), icon=":material/timer:",
                     color="red" if is_overdue(task, now) else "blue")
    if not gone and task.get("assignee"):
        badges.badge(f"assigned to {task['assignee']}", icon=":material/person:", color="gray")
    elif not gone and task.get("candidate_groups"):
        badges.badge("offered to " + ", ".join(task["candidate_groups"]), icon=":material/group:", color="gray")
    must_claim = not gone and claim_first(task)
    if must_claim:
        badges.badge("claim first", icon=":material/back_hand:", color="orange")

    # what the approver approves: the instance's key and variables, and a way to its page
    about = task_context(engine, task)
    head = st.columns([4, 1], vertical_alignment="center")
    head[0].markdown(f"**{task['title']}** · {about['definition']} v{about['version']}"
                     + (f" · key **{about['business_key']}**" if about["business_key"] else "")
                     + f" · instance `{short_id(task['instance_id'])}` ({about['status']})")
    if head[1].button("Open its instance", key="tasks_open_instance", icon=":material/account_tree:"):
        st.session_state["instance_id"] = st.session_state["instance_pick"] = task["instance_id"]
        st.switch_page("pages/6_Instance.py")
    if about["variables"]:
        st.dataframe(variables_table(about["variables"]), hide_index=True, key="tasks_variables",
                     height=min(36 + 35 * len(about["variables"]), 250))
    else:
        st.caption("The instance holds no variables yet.")

    if not gone:
        buttons = st.columns([3, 1, 1], vertical_alignment="bottom")
        delegate_to = buttons[0].text_input("Delegate to", key="tasks_delegate_to", placeholder="a user name")
        if buttons[1].button("Delegate", key="tasks_delegate", disabled=not delegate_to.strip()):
            act(ctx, f"Task {task_id} delegated to {delegate_to.strip()}.", engine.delegate, task_id,
                delegate_to.strip(), user, groups, forget=("tasks_working",))
        if task["assignee"] is None and buttons[2].button("Claim", key="tasks_claim"):
            act(ctx, f"You claimed task {task_id}.", engine.claim, task_id, user, groups)
        if (task["assignee"] == user and task["candidate_groups"]
                and buttons[2].button("Unclaim", key="tasks_unclaim")):
            act(ctx, f"Task {task_id} is back with {', '.join(task['candidate_groups'])}.", engine.unclaim,
                task_id, user)

        with st.form(f"tasks_complete:{task_id}"):
            if any(f.get("required") for f in task["form"]):
                st.caption("\\* required")
            values = task_form_fields(task, "tasks_field")
            if not task["form"]:
                unset = ", ".join(f"`{n}`" for n in about["unset"])
                st.info("This task has no form: Complete records no answer, and the process goes on with the "
                        "variables above." + (f" Not set yet: {unset}. If a later decision needs one of them, "
                                              "the design must give this task a form field for it (Designer)."
                                              if unset else ""), icon=":material/info:")
            if st.form_submit_button("Complete", type="primary", key=f"tasks_complete_button:{task_id}",
                                     disabled=must_claim, help="This task requires a claim: claim it first, then "
                                     "complete it." if must_claim else None):
                st.session_state["flash_instance"] = task["instance_id"]
                act(ctx, f"Task {task_id} completed.", engine.complete_task, task_id,
                    form_values(task["form"], values), actor=user, groups=groups, forget=("tasks_working",))
                st.session_state.pop("flash_instance", None)  # refused: the error is shown instead
                # if someone else acted meanwhile, say who
                if task_id not in {t["id"] for t in engine.inbox(user, groups)}:
                    st.warning(why_gone(engine, task_id), icon=":material/person_alert:")

st.divider()
st.subheader("Start an instance")
names = engine.definitions()
prefer_deployed("tasks_design", names)
name = st.selectbox("Design", names, key="tasks_design")
remember("tasks_design")
start_form(ctx, engine.definition(name), "tasks")

st.divider()
st.subheader("SLA")
st.dataframe(engine.sla_stats(), hide_index=True, key="tasks_sla")
