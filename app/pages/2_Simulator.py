"""Simulator: run a design with its scenario, see KPIs with confidence intervals, figures, and where work waits."""

from __future__ import annotations

import streamlit as st

import designs
from app.support import kpi_table, overlays
from engine.errors import DefinitionError
from engine.render import to_dot
from simulator import load_scenario, plots, simulate

st.set_page_config(page_title="Simulator · waooaw", layout="wide")
st.title("Simulator")

name = st.selectbox("Design", designs.names(), key="sim_design")
scenario_file = designs.scenario_path(name)
if scenario_file is None:
    st.warning(f"No scenario for {name}: add designs/{name}.scenario.yaml (arrivals, durations, pools).")
    st.stop()
try:
    definition = designs.load_design(name)
    scenario = load_scenario(scenario_file)
except DefinitionError as exc:  # ScenarioError is one
    st.error(str(exc))
    st.stop()

with st.expander(f"Scenario: {scenario.name or scenario_file.name}"):
    st.code(scenario_file.read_text(encoding="utf-8"), language="yaml")

left, right = st.columns(2)
replications = left.slider("Replications", 1, 30, value=min(3, scenario.replications), key="sim_replications",
                           help="More replications narrow the confidence intervals; each takes well under a second.")
seed = right.number_input("Seed", min_value=0, value=scenario.seed, step=1, key="sim_seed")

if st.button("Run simulation", type="primary", key="sim_run"):
    bar = st.progress(0.0, text=f"Simulating {replications} replication(s)…")
    try:
        results = simulate(definition, scenario, replications=replications, seed=int(seed),
                           progress=lambda done: bar.progress(min(max(done, 0.0), 1.0)))
    except DefinitionError as exc:
        bar.empty()
        st.error(str(exc))
        st.stop()
    bar.empty()
    st.session_state["sim_results"] = (name, results)

stored = st.session_state.get("sim_results")
if stored is None or stored[0] != name:
    st.info("Choose the number of replications and run.")
    st.stop()
results = stored[1]

st.caption(f"{len(results.runs)} replication(s), {results.events:,} events in {results.wall_seconds:.2f} s; "
           "times in hours.")
for warning in results.warnings:
    st.warning(warning)

kpis, diagram, figures = st.tabs(["KPIs", "Where work waits", "Figures"])
with kpis:
    st.dataframe(kpi_table(results), hide_index=True, key="sim_kpis")
with diagram:
    marks = overlays(results)
    st.caption("Badges: activations per replication. Fill: mean waiting time for a person or agent, darker waits "
               "longer" + ("." if marks["heat"] else " (nobody waited in this run)."))
    st.graphviz_chart(to_dot(definition, **marks), width="stretch")
with figures:
    drawn = (plots.cycle_time_histogram(results), plots.queue_length(results), plots.utilisation_bars(results))
    columns = st.columns(2)
    for i, figure in enumerate(drawn):
        columns[i % 2].pyplot(figure, width="stretch")
