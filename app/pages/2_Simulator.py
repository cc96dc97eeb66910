"""Simulator: any saved or library design with a scenario (a form and its YAML side by side); results in a
manager's language, the diagram as a heat map, a what-if comparison, and predicted against observed."""

from __future__ import annotations

from typing import Any

import streamlit as st
import yaml

import designs
from app.chrome import flash, page
from app.operations import observed_runs
from app.sim_view import (
    DISTRIBUTIONS,
    PARAMETERS,
    dominant_line,
    form_to_spec,
    kpi_cards,
    predicted_vs_observed,
    sla_breach,
    spec_to_form,
    starting_scenario,
    to_yaml,
    what_if,
)
from app.support import kpi_table, overlays
from engine.errors import DefinitionError, WaooawError
from engine.render import to_dot
from simulator import plots, simulate
from simulator.scenario import from_yaml as scenario_from_yaml

ctx = page("Simulator", ":material/query_stats:")
workspace = ctx.workspace

# --- which design -------------------------------------------------------------------------------------------
choices = [("saved", n) for n in workspace.names()] + [("library", n) for n in designs.names()]
preferred = st.session_state.get("design")
index = next((i for i, c in enumerate(choices) if c == ("saved", preferred)), 0)
source, name = st.selectbox("Design", choices, index=index, key="sim_pick",
                            format_func=lambda c: f"{c[1]} ({'saved' if c[0] == 'saved' else 'template'})")
try:
    definition = workspace.load(name) if source == "saved" else designs.load_design(name)
except DefinitionError as exc:
    st.error(f"{name} does not load: fix it in the Designer.\n\n{exc}")
    st.stop()

if source == "saved":
    stored = workspace.scenario_text(name)
else:
    path = designs.scenario_path(name)
    stored = path.read_text(encoding="utf-8") if path else None
generated = stored is None
yaml_key = f"sim_yaml:{source}:{name}"
version_key = f"sim_form_version:{source}:{name}"
if yaml_key not in st.session_state:
    st.session_state[yaml_key] = stored if stored is not None else to_yaml(starting_scenario(definition))
version = st.session_state.setdefault(version_key, 0)
if generated:
    st.info("This design has no scenario yet: here is a starting one generated from its tasks (2 cases an hour, "
            "agents about 5 min, people about 30 min, even branch odds). Edit it to match what you know"
            + (", then save it with the design." if source == "saved" else "."), icon=":material/auto_fix_high:")

try:
    data: dict[str, Any] = yaml.safe_load(st.session_state[yaml_key]) or {}
    if not isinstance(data, dict):
        raise ValueError("a scenario is a mapping (horizon, arrivals, tasks, …)")
except (yaml.YAMLError, ValueError) as exc:
    data = {}
    st.error(f"The scenario YAML does not parse: {exc}")

# --- the scenario: a form beside its YAML --------------------------------------------------------------------
results_key = f"sim_results:{source}:{name}"
editor = st.expander("Scenario: the form and its YAML", expanded=results_key not in st.session_state,
                     icon=":material/tune:")
form_col, yaml_col = editor.columns([3, 2], gap="large")
with form_col, st.form(f"sim_form:{source}:{name}:{version}"):
    st.markdown("**Scenario**")
    k = f"sim_f{version}:{source}:{name}"
    top = st.columns(3)
    horizon = top[0].text_input("Horizon", str(data.get("horizon", "P7D")), key=f"{k}:horizon",
                                help="How long cases arrive (ISO-8601: P7D, PT8H).")
    warmup = top[1].text_input("Warm-up", str(data.get("warmup", "PT0S")), key=f"{k}:warmup",
                               help="Cases arriving before this are left out of the KPIs.")
    drain = top[2].text_input("Drain", str(data.get("drain", "PT0S")), key=f"{k}:drain",
                              help="Keep running this long after arrivals stop, so late cases finish.")
    second = st.columns(3)
    replications = second[0].number_input("Replications", 1, 200, int(data.get("replications", 5)),
                                          key=f"{k}:reps", help="More replications narrow the 95% intervals.")
    seed = second[1].number_input("Seed", 0, value=int(data.get("seed", 0)), key=f"{k}:seed")
    arrivals = dict(data.get("arrivals") or {})
    poisson = arrivals.get("poisson") if isinstance(arrivals.get("poisson"), dict) else None
    if poisson is not None:
        rate = second[2].number_input(f"Arrivals per {poisson.get('per', 'hour')}", min_value=0.001,
                                      value=float(poisson.get("rate", 1)), key=f"{k}:rate")
    else:
        rate = None
        second[2].caption(f"Arrivals: {', '.join(arrivals) or 'none'} (edit in the YAML).")

    tasks = dict(data.get("tasks") or {})
    pools = dict(data.get("pools") or {})
    new_tasks: dict[str, Any] = {}
    if tasks:
        st.markdown("**Durations** (ISO-8601 durations or seconds)")
    for task_id, spec in tasks.items():
        spec = dict(spec or {})
        shown = spec_to_form(spec.get("duration"))
        row = st.columns([2, 2, 3, 2])
        row[0].markdown(f"`{task_id}`")
        if shown is None:
            row[1].caption("as in the YAML")
            new_tasks[task_id] = spec
            continue
        kind = row[1].selectbox("Distribution", DISTRIBUTIONS, DISTRIBUTIONS.index(shown[0]),
                                key=f"{k}:dist:{task_id}", label_visibility="collapsed")
        params = row[2].text_input(PARAMETERS[kind], shown[1], key=f"{k}:params:{task_id}",
                                   label_visibility="collapsed", placeholder=PARAMETERS[kind],
                                   help=f"{kind}: {PARAMETERS[kind]}")
        if pools and "pool" in spec:
            names = list(pools)
            spec["pool"] = row[3].selectbox("Pool", names, names.index(spec["pool"]) if spec["pool"] in names
                                            else 0, key=f"{k}:pool:{task_id}", label_visibility="collapsed")
        new_tasks[task_id] = (spec, kind, params)

    calendars = list((data.get("calendars") or {}).keys())
    new_pools: dict[str, Any] = {}
    if pools:
        st.markdown("**Pools** (people of one role)")
    for pool, spec in pools.items():
        spec = dict(spec or {})
        row = st.columns([2, 1, 2])
        row[0].markdown(f"`{pool}`")
        spec["size"] = int(row[1].number_input("Size", 1, 1000, int(spec.get("size", 1)), key=f"{k}:size:{pool}",
                                               label_visibility="collapsed"))
        options = ["always", *calendars]
        chosen = row[2].selectbox("Calendar", options, options.index(spec["calendar"]) if spec.get("calendar")
                                  in options else 0, key=f"{k}:cal:{pool}", label_visibility="collapsed")
        spec.pop("calendar", None)
        if chosen != "always":
            spec["calendar"] = chosen
        new_pools[pool] = spec

    branches = dict(data.get("branches") or {})
    new_branches: dict[str, Any] = {}
    if branches:
        st.markdown("**Branch probabilities** (each gateway's add up to 1)")
    for gateway, flows in branches.items():
        cols = st.columns(max(len(flows), 1))
        new_branches[gateway] = {flow: float(cols[i].number_input(f"{gateway} → {flow}", 0.0, 1.0, float(p),
                                                                  step=0.05, key=f"{k}:br:{gateway}:{flow}"))
                                 for i, (flow, p) in enumerate((flows or {}).items())}

    messages = dict(data.get("messages") or {})
    new_messages: dict[str, Any] = {}
    if messages:
        st.markdown("**Messages** from the world (after how long, and how likely)")
    for message, spec in messages.items():
        spec = dict(spec or {})
        shown = spec_to_form(spec.get("after"))
        row = st.columns([2, 2, 2, 2])
        row[0].markdown(f"`{message}`")
        if shown is None:
            row[1].caption("as in the YAML")
            new_messages[message] = spec
            continue
        kind = row[1].selectbox("After", DISTRIBUTIONS, DISTRIBUTIONS.index(shown[0]), key=f"{k}:mdist:{message}",
                                label_visibility="collapsed")
        params = row[2].text_input("Parameters", shown[1], key=f"{k}:mparams:{message}", label_visibility="collapsed")
        probability = row[3].number_input("Probability", 0.0, 1.0, float(spec.get("probability", 1.0)), step=0.05,
                                          key=f"{k}:mprob:{message}", label_visibility="collapsed")
        new_messages[message] = (spec, kind, params, probability)

    if st.form_submit_button("Apply the form", icon=":material/edit_note:"):
        try:
            updated = {**data, "horizon": horizon.strip(), "warmup": warmup.strip(), "drain": drain.strip(),
                       "replications": int(replications), "seed": int(seed)}
            if rate is not None:
                updated["arrivals"] = {**arrivals, "poisson": {**poisson, "rate": rate}}  # type: ignore[dict-item]
            if tasks:
                updated["tasks"] = {t: (v if isinstance(v, dict) else {**v[0], "duration": form_to_spec(v[1], v[2])})
                                    for t, v in new_tasks.items()}
            if pools:
                updated["pools"] = new_pools
            if branches:
                updated["branches"] = new_branches
            if messages:
                updated["messages"] = {m: (v if isinstance(v, dict) else {**v[0], "after": form_to_spec(v[1], v[2]),
                                                                          "probability": v[3]})
                                       for m, v in new_messages.items()}
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.session_state[yaml_key] = to_yaml(updated)
            st.rerun()

with yaml_col:
    if st.button("Start over from a generated scenario", key="sim_regenerate", icon=":material/auto_fix_high:"):
        st.session_state[yaml_key] = to_yaml(starting_scenario(definition))
        st.session_state[version_key] = version + 1
        st.rerun()
    with st.form(f"sim_yaml_form:{source}:{name}"):
        st.text_area("Scenario YAML", key=yaml_key, height=520)
        if st.form_submit_button("Apply the YAML", icon=":material/code:"):
            st.session_state[version_key] = version + 1  # the form shows the YAML's values
            st.rerun()
    if source == "saved" and st.button("Save the scenario with the design", key="sim_save",
                                               icon=":material/save:", disabled=not workspace.may_write,
                                               help=None if workspace.may_write else
                                               "Saving with the design needs the designer role."):
        try:
            scenario_from_yaml(st.session_state[yaml_key], f"{name}.scenario.yaml")
            workspace.save_scenario(name, st.session_state[yaml_key])
        except WaooawError as exc:
            st.error(str(exc))
        else:
            flash(f"Scenario saved beside {name}.")
            st.rerun()

# --- run ----------------------------------------------------------------------------------------------------
if st.button("Run simulation", type="primary", key="sim_run", icon=":material/play_arrow:"):
    try:
        scenario = scenario_from_yaml(st.session_state[yaml_key], f"{name}.scenario.yaml")
        problems = [p for p in scenario.check(definition) if p.severity == "error"]
        if problems:
            raise DefinitionError(problems, f"{name}.scenario.yaml")
        bar = st.progress(0.0, text=f"Simulating {scenario.replications} replication(s)…")
        results = simulate(definition, scenario, progress=lambda done: bar.progress(min(max(done, 0.0), 1.0)))
        bar.empty()
    except DefinitionError as exc:  # ScenarioError is one: every problem with its line
        st.error("The scenario cannot run:\n\n" + "\n".join(f"- {p}" for p in exc.problems))
    else:
        st.session_state[results_key] = results
        st.session_state.pop(f"sim_whatif:{source}:{name}", None)

results = st.session_state.get(results_key)
if results is None:
    st.caption("Run the simulation to see the results.")
    st.stop()

st.caption(f"{len(results.runs)} replication(s), {results.events:,} events in {results.wall_seconds:.2f} s.")
for warning in results.warnings:
    st.warning(warning)
overview, heat, sla_tab, whatif_tab, observed_tab, table_tab = st.tabs(
    ["Overview", "Heat map", "SLA per task", "What-if", "Predicted vs observed", "All KPIs"])
with overview:
    st.markdown(f"#### {dominant_line(results, definition)}")
    cards = kpi_cards(results, definition)
    columns = st.columns(min(len(cards), 3) or 1)
    for i, card in enumerate(cards):
        columns[i % len(columns)].metric(card.label, card.value, help=card.interval, border=True)
        columns[i % len(columns)].caption(card.interval)
    figures = st.columns(3)
    figures[0].pyplot(plots.cycle_time_histogram(results), width="stretch")
    figures[1].pyplot(plots.queue_length(results), width="stretch")
    figures[2].pyplot(plots.utilisation_bars(results), width="stretch")
with heat:
    marks = overlays(results)
    st.caption("Badges: activations per replication. Fill: mean waiting time for a person or agent, darker waits "
               "longer" + ("." if marks["heat"] else " (nobody waited in this run)."))
    st.graphviz_chart(to_dot(definition, **marks), width="stretch")
with sla_tab:
    breach = sla_breach(results, definition)
    if breach.empty:
        st.caption("No user task with an SLA.")
    else:
        st.dataframe(breach, hide_index=True, key="sim_sla", column_config={
            "breach": st.column_config.ProgressColumn("breached", format="percent", min_value=0, max_value=1),
            "low": st.column_config.NumberColumn("95% low", format="percent"),
            "high": st.column_config.NumberColumn("95% high", format="percent")})
with whatif_tab:
    st.caption("Scenario B: edit a copy of the scenario (a pool's size, a duration, the arrival rate) and compare. "
               "Same seed and replications: the runs share their random numbers, so the comparison is paired.")
    b_key = f"sim_whatif_yaml:{source}:{name}"
    if b_key not in st.session_state:
        st.session_state[b_key] = st.session_state[yaml_key]
    with st.form(f"sim_whatif_form:{source}:{name}"):
        st.text_area("Scenario B (YAML)", key=b_key, height=260)
        compare_clicked = st.form_submit_button("Compare A and B", icon=":material/compare_arrows:")
    if compare_clicked:
        try:
            scenario_b = scenario_from_yaml(st.session_state[b_key], "what-if.yaml")
            results_b = simulate(definition, scenario_b)
        except DefinitionError as exc:
            st.error("Scenario B cannot run:\n\n" + "\n".join(f"- {p}" for p in exc.problems))
        else:
            st.session_state[f"sim_whatif:{source}:{name}"] = what_if(results, results_b)
    table = st.session_state.get(f"sim_whatif:{source}:{name}")
    if table is not None:
        significant = table[table["significant"] == True]  # noqa: E712  (a column of booleans)
        st.markdown(f"**{len(significant)} of {len(table)} KPIs differ significantly (95%).**")
        st.dataframe(table, hide_index=True, key="sim_whatif_table")
with observed_tab:
    finished, tasks_done = observed_runs(ctx.engine, definition.id)
    if finished.empty:
        st.info(f"No finished instance of `{definition.id}` in the engine yet: deploy it, run instances (the clock "
                "control moves time), then come back.", icon=":material/hourglass_empty:")
    else:
        comparison = predicted_vs_observed(results, finished, tasks_done)
        inside = comparison["inside"].dropna()
        st.markdown(f"**{int(inside.sum())} of {len(inside)} observed values lie inside the simulation's 95% "
                    f"interval** for {len(finished)} finished instance(s).")
        st.caption("The interval is where a batch of this many real cases should fall if the simulation is right "
                   "(bootstrap from the simulated cases).")
        st.dataframe(comparison, hide_index=True, key="sim_observed", column_config={
            "inside": st.column_config.CheckboxColumn("inside the interval")})
with table_tab:
    st.dataframe(kpi_table(results), hide_index=True, key="sim_kpis")
    st.download_button("Event log (CSV)", results.event_log().to_csv(index=False), file_name=f"{name}_events.csv",
                       mime="text/csv")
