"""Deployments: deploy a saved design, see each definition's versions, compare two versions node by node."""

from __future__ import annotations

import streamlit as st

from app.auth import offer_personas
from app.chrome import current_design, flash, note_deployed, page, prefer_deployed
from app.operations import deploy_saved, node_diff, versions
from app.support import Checked
from app.versions_view import versions_panel

ctx = page("Deployments", ":material/rocket_launch:")
engine, workspace = ctx.engine, ctx.workspace

st.subheader("Deploy a saved design")
saved = workspace.names()
if not saved:
    st.info("No saved designs yet: create one in the Designer (from a template or blank), then deploy it here.",
            icon=":material/draw:")
else:
    pick = st.columns([3, 1], vertical_alignment="bottom")
    preferred = current_design()
    name = pick[0].selectbox("Saved design", saved, key="deploy_design",
                             index=saved.index(preferred) if preferred in saved else 0)
    if pick[1].button("Deploy", type="primary", key="deploy_button", icon=":material/rocket_launch:"):
        result = deploy_saved(engine, workspace, name)
        if result.refusal:
            st.error(result.refusal if ctx.runtime.config.demo else result.refusal.split(" In the demo,")[0],
                     icon=":material/lock:")
            if ctx.runtime.config.demo:
                offer_personas("deploy", "deploy_as")
        elif result.refused:
            st.error(f"{name} was not deployed: {len(result.problems)} problem(s) to fix in the Designer first.",
                     icon=":material/block:")
            st.dataframe(Checked(None, result.problems).table(), hide_index=True, key="deploy_problems")
        else:
            assert result.definition is not None
            version = result.definition.version
            flash(f"Deployed {name} as version {version}." if result.new else
                  f"{name} is unchanged since version {version}: nothing new deployed (same content, same version).")
            note_deployed(name, version)
            st.rerun()

st.subheader("Deployed definitions")
table = versions(engine)
if table.empty:
    st.info("Nothing deployed yet.")
    st.stop()
st.dataframe(table, hide_index=True, key="deploy_versions",
             column_config={"deployed_at": st.column_config.DatetimeColumn("deployed (UTC)", format="YYYY-MM-DD HH:mm"),
                            "new instances": st.column_config.ProgressColumn(
                                "share of new instances", format="percent", min_value=0.0, max_value=1.0)})

st.subheader("Compare two versions")
names = sorted(table["name"].unique())
prefer_deployed("diff_name", names)
name = st.selectbox("Definition", names, key="diff_name")
available = sorted(table[table["name"] == name]["version"].tolist())
if len(available) < 2:
    st.caption(f"{name} has one version: deploy a changed design to compare.")
else:
    cols = st.columns(2)
    old = cols[0].selectbox("From version", available, index=len(available) - 2, key="diff_old")
    new = cols[1].selectbox("To version", available, index=len(available) - 1, key="diff_new")
    diff = node_diff(engine.definition(name, int(old)), engine.definition(name, int(new)))
    if diff.empty:
        st.success("Same nodes, flows and variables.")
    else:
        st.dataframe(diff, hide_index=True, key="diff_table")

st.subheader(f"Rollout and experiments: {name}")
versions_panel(ctx, name, available)
