"""Runs: every instance, filtered and paged in the database (fast with 100,000 of them); start one."""

from __future__ import annotations

import math

import streamlit as st

from app.chrome import page, prefer_deployed, remember
from app.operations import STATUSES, RunFilter, count_runs, mark_runs, page_of_runs
from app.widgets import start_form

ctx = page("Runs", ":material/list_alt:")
engine = ctx.engine
names = engine.definitions()

with st.expander("Start an instance", icon=":material/play_arrow:"):
    if names:
        prefer_deployed("runs_start_design", names)
        chosen = st.selectbox("Process to start", names, key="runs_start_design")
        remember("runs_start_design")
        start_form(ctx, engine.definition(chosen), "runs")
    else:
        st.info("Deploy a design first (Deployments page).")

cols = st.columns([2, 1, 2, 2, 2, 2])
definition = cols[0].selectbox("Definition", names, index=None, placeholder="any", key="runs_definition")
version = cols[1].number_input("Version", min_value=1, value=None, step=1, key="runs_version", placeholder="any",
                               disabled=definition is None, help="Of the chosen definition.")
status = cols[2].selectbox("Status", STATUSES, index=None, placeholder="any", key="runs_status")
business_key = cols[3].text_input("Business key", key="runs_bkey")
started_from = cols[4].date_input("Started from", value=None, key="runs_from")
started_to = cols[5].date_input("Started until", value=None, key="runs_to")
filters = RunFilter(definition, int(version) if version else None, status, business_key.strip() or None,
                    started_from, started_to)
size = 50
if st.session_state.get("runs_filters") != filters:  # new filters: back to the first page
    st.session_state["runs_filters"] = filters
    st.session_state["runs_page"] = 1
pages = max(1, math.ceil(count_runs(engine, filters) / size))
nav = st.columns([1, 4], vertical_alignment="center")
page_no = nav[0].number_input("Page", min_value=1, max_value=pages, step=1, key="runs_page")
frame, total = page_of_runs(engine, filters, int(page_no) - 1, size)
frame = mark_runs(engine, frame)
nav[1].caption(f"{total} instance(s) match; page {page_no} of {pages}, newest first.")
if frame.empty:
    st.info("No instance matches." if total == "0" else "This page is empty.")
    st.stop()
event = st.dataframe(frame, hide_index=True, key="runs_table", on_select="rerun", selection_mode="single-row",
                     column_config={"id": st.column_config.TextColumn(width="medium")})
picked = event.selection.rows if event and event.selection else []
if picked:
    st.session_state["instance_id"] = st.session_state["instance_pick"] = frame.iloc[picked[0]]["id"]
    st.switch_page("pages/6_Instance.py")
st.caption("Select a row to open the instance.")
