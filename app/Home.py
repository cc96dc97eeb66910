"""waooaw: the app's entry page (``waooaw app`` or ``streamlit run app/Home.py``)."""

from __future__ import annotations

import streamlit as st

import designs
from engine.errors import DefinitionError
from engine.validate import errors_only

st.set_page_config(page_title="waooaw", page_icon="🐾", layout="wide")

st.title("waooaw")
st.markdown(
    "Workflows for a company of software agents and people: **design** a process (BPMN-like, saved as YAML), "
    "**validate** it, **simulate** it with SimPy to see cycle times, queues and SLA breaches before anyone "
    "runs it."
)

left, middle, right = st.columns(3)
with left:
    st.page_link("pages/1_Designer.py", label="Designer: draw, edit, validate, export", icon="✏️")
with middle:
    st.page_link("pages/2_Simulator.py", label="Simulator: KPIs with confidence intervals", icon="📈")
with right:
    st.page_link("pages/3_Tasks.py", label="Tasks: run designs live and work the inbox", icon="✅")

st.subheader("Designs in the library")
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
st.dataframe(rows, hide_index=True)
st.caption("Command line: `waooaw validate NAME`, `waooaw render NAME -o out.svg`, `waooaw simulate NAME`.")
