"""waooaw: the app's entry page (``make app``, ``waooaw app`` or ``streamlit run app/Home.py``)."""

from __future__ import annotations

import streamlit as st

import designs
from app.chrome import page
from engine.errors import DefinitionError
from engine.validate import errors_only

ctx = page("waooaw", ":material/account_tree:")
st.markdown(
    "Workflows for a company of software agents and people, in one loop: **design** a process, **simulate** it "
    "to see cycle times, queues and SLA breaches before anyone runs it, **deploy** it, **run** instances and "
    "**approve** their human tasks, then compare what the simulator predicted with what happened.")

links = [("pages/1_Designer.py", "Designer: draw, edit, validate, save", ":material/draw:"),
         ("pages/2_Simulator.py", "Simulator: KPIs with 95% intervals, what-if", ":material/query_stats:"),
         ("pages/4_Deployments.py", "Deployments: versions and their differences", ":material/rocket_launch:"),
         ("pages/5_Runs.py", "Runs: start and find instances", ":material/list_alt:"),
         ("pages/3_Tasks.py", "Tasks: the inbox, claim and complete", ":material/task_alt:"),
         ("pages/6_Instance.py", "Instance: path, variables, incidents, messages", ":material/account_tree:")]
columns = st.columns(3)
for i, (target, label, icon) in enumerate(links):
    columns[i % 3].page_link(target, label=label, icon=icon)

st.caption(ctx.runtime.config.describe())

st.subheader("Your saved designs")
saved = ctx.workspace.list()
if saved:
    st.dataframe([{"design": d.name, "title": d.title, "scenario": "yes" if d.has_scenario else "",
                   "updated (UTC)": d.updated_at.strftime("%Y-%m-%d %H:%M")} for d in saved], hide_index=True,
                 key="home_saved")
else:
    st.caption("None yet: the Designer starts one from a template or blank.")

st.subheader("Templates (the library)")
rows = []
for name in designs.names():
    try:
        definition = designs.load_design(name)
    except DefinitionError as exc:
        rows.append({"design": name, "title": "", "nodes": None, "scenario": "", "status": f"does not load: {exc}"})
        continue
    rows.append({
        "design": name,
        "title": definition.label,
        "nodes": len(definition.all_nodes()),
        "scenario": "yes" if designs.scenario_path(name) else "",
        "status": f"{len(errors)} error(s)" if (errors := errors_only(definition)) else "valid",
    })
st.dataframe(rows, hide_index=True, key="home_library")
st.caption("Command line: `waooaw validate NAME`, `waooaw render NAME -o out.svg`, `waooaw simulate NAME`.")
