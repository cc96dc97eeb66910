"""Simulator: any saved or library design with a scenario (a form and its YAML side by side); results in a
manager's language, the diagram as a heat map, a what-if comparison, and predicted against observed."""

from __future__ import annotations

from typing import Any

import streamlit as st

import designs
from app.chrome import current_design, flash, page
from app.operations import observed_runs
from app.sim_view import (
    DISTRIBUTIONS,
    DURATION_HINT,
    PARAMETERS,
    compose,
    default_params,
    dominant_line,
    duration_words,
    flow_label,
    kpi_cards,
    load_report,
    node_label,
    predicted_vs_observed,
    scenario_mapping,
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
from simulator.run import called_designs
from simulator.scenario import from_yaml as scenario_from_yaml

ctx = page("Simulator", ":material/query_stats:")
workspace = ctx.workspace

# --- which design -------------------------------------------------------------------------------------------
choices = [("saved", n) for n in workspace.names()] + [("library", n) for n in designs.names()]
preferred = current_design()
index = next((i for i, c in enumerate(choices) if c == ("saved", preferred)), 0)
source, name = st.selectbox("Design", choices, index=index, key="sim_pick",
                            format_func=lambda c: f"{c[1]} ({'saved' if c[0] == 'saved' else 'template'})")
try:
    definition = workspace.load(name) if source == "saved" else designs.load_design(name)
    # its call activities run the designs of the same set (saved designs, or the templates) inline
    called = called_designs(definition, (lambda n: workspace.load(n) if workspace.exists(n) else None)
                            if source == "saved" else (lambda n: designs.load_design(n) if n in designs.names()
                                                       else None))
except DefinitionError as exc:
    st.error(f"{name} (or a design it calls) does not load: fix it in the Designer.\n\n{exc}")
    st.stop()

if source == "saved":
    stored = workspace.scenario_text(name)
else:
    path = designs.scenario_path(name)
    stored = path.read_text(encoding="utf-8") if path else None
generated = stored is None
try:
    saved_data = scenario_mapping(stored) if stored is not None else None
except ValueError as exc:
    st.error(f"The saved scenario does not read ({exc}): the form starts from a generated one.")
    saved_data = None
# The draft: what the form and the YAML show, kept per design for the whole visit (leaving the page keeps it).
draft_key = f"sim_draft:{source}:{name}"
yaml_key = f"sim_yaml:{source}:{name}"
yaml_error_key = f"sim_yaml_error:{source}:{name}"
version_key = f"sim_form_version:{source}:{name}"
if draft_key not in st.session_state:
    st.session_state[draft_key] = (saved_data if saved_data is not None
                                   else starting_scenario(definition))
version = st.session_state.setdefault(version_key, 0)
data: dict[str, Any] = st.session_state[draft_key]
if generated:
    st.info("This design has no scenario yet: here is a starting one generated from its tasks (2 cases an hour, "
            "agents about 5 min, people about 30 min, even branch odds). Edit it to match what you know"
            + (", then save it with the design." if source == "saved" else "."), icon=":material/auto_fix_high:")


def _yaml_edited() -> None:
    """The YAML was edited (on blur or Ctrl+Enter): it becomes the draft, and the form shows it."""
    try:
        parsed = scenario_mapping(st.session_state[yaml_key])
    except ValueError as exc:
        st.session_state[yaml_error_key] = str(exc)
        return
    st.session_state.pop(yaml_error_key, None)
    st.session_state[draft_key] = parsed
    st.session_state[version_key] = version + 1


# --- the scenario: a form beside its YAML (either edits the one draft) ----------------------------------------
results_key = f"sim_results:{source}:{name}"
unsaved = saved_data is None or saved_data != data
editor = st.expander("Scenario" + (" (unsaved changes)" if unsaved and source == "saved" else ""),
                     expanded=results_key not in st.session_state, icon=":material/tune:")
form_col, yaml_col = editor.columns([2, 1], gap="medium")
k = f"sim_f{version}:{source}:{name}"
form: dict[str, Any] = {"labels": {t: node_label(definition, t) for t in (data.get("tasks") or {})}}
with form_col:
    st.caption("What you change here is what Run simulation uses. " + DURATION_HINT)
    top = st.columns(3)
    form["horizon"] = top[0].text_input("Horizon", duration_words(data.get("horizon", "P7D")), key=f"{k}:horizon",
                                        help="How long cases arrive. " + DURATION_HINT)
    form["warmup"] = top[1].text_input("Warm-up", duration_words(data.get("warmup", "PT0S")), key=f"{k}:warmup",
                                       help="Cases arriving before this are left out of the KPIs.")
    form["drain"] = top[2].text_input("Drain", duration_words(data.get("drain", "PT0S")), key=f"{k}:drain",
                                      help="Keep running this long after arrivals stop, so late cases finish.")
    second = st.columns(3)
    form["replications"] = second[0].number_input("Replications", 1, 200, int(data.get("replications", 5)),
                                                  key=f"{k}:reps", help="More replications narrow the 95% intervals.")
    form["seed"] = second[1].number_input("Seed", 0, value=int(data.get("seed", 0)), key=f"{k}:seed",
                                          help="The same seed gives the same run.")
    arrivals = dict(data.get("arrivals") or {})
    poisson = arrivals.get("poisson") if isinstance(arrivals.get("poisson"), dict) else None
    if poisson is not None:
        form["rate"] = second[2].number_input(f"Arrivals per {poisson.get('per', 'hour')}", min_value=0.001,
                                              value=float(poisson.get("rate", 1)), key=f"{k}:rate",
                                              help="New cases, on average (Poisson arrivals).")
    else:
        second[2].caption(f"Arrivals: {', '.join(arrivals) or 'none'} (edit in the YAML).")

    tasks = dict(data.get("tasks") or {})
    pools = dict(data.get("pools") or {})
    if tasks:
        st.markdown("**How long each task takes** (a distribution and its values)")
    form["tasks"] = {}
    for task_id, spec in tasks.items():
        spec = dict(spec or {})
        shown = spec_to_form(spec.get("duration"))
        label = node_label(definition, task_id)
        if shown is None:
            st.caption(f"{label}: a duration the form cannot show (edit it in the YAML).")
            continue
        st.markdown(f"{label}" + (f" :gray[(`{task_id}`)]" if label != task_id else ""))
        row = st.columns([3, 2, 2, 3], vertical_alignment="bottom")
        kind = row[0].selectbox("Distribution", DISTRIBUTIONS, DISTRIBUTIONS.index(shown[0]),
                                key=f"{k}:dist:{task_id}")
        values = ([duration_words(v) for v in shown[1]] if kind == shown[0] else default_params(kind, shown[1]))
        names = PARAMETERS[kind].split(", ")
        boxes = st.columns(len(names)) if len(names) > 2 else None
        texts = [(row[1 + i] if boxes is None else boxes[i]).text_input(
            param, values[i], key=f"{k}:p{i}:{kind}:{task_id}", help=f"{kind}: {PARAMETERS[kind]}. {DURATION_HINT}")
            for i, param in enumerate(names)]
        pool = None
        if pools and "pool" in spec:
            pool_names = list(pools)
            pool = row[-1].selectbox("Done by", pool_names, pool_names.index(spec["pool"])
                                     if spec["pool"] in pool_names else 0, key=f"{k}:pool:{task_id}")
        form["tasks"][task_id] = (kind, texts, pool)

    calendars = list((data.get("calendars") or {}).keys())
    if pools:
        st.markdown("**Pools** (people of one role: how many, and when they work)")
    form["pools"] = {}
    for pool, spec in pools.items():
        spec = dict(spec or {})
        row = st.columns([3, 2, 4], vertical_alignment="bottom")
        row[0].markdown(pool)
        size = row[1].number_input("People", 1, 1000, int(spec.get("size", 1)), key=f"{k}:size:{pool}")
        options = ["always", *calendars]
        chosen = row[2].selectbox("Calendar", options, options.index(spec["calendar"]) if spec.get("calendar")
                                  in options else 0, key=f"{k}:cal:{pool}")
        form["pools"][pool] = (size, chosen)

    branches = dict(data.get("branches") or {})
    if branches:
        st.markdown("**Branch probabilities** (each gateway's add up to 1)")
    form["branches"] = {}
    for gateway, flows in branches.items():
        st.caption(node_label(definition, gateway))
        cols = st.columns(max(len(flows or {}), 1))
        form["branches"][gateway] = {
            flow: float(cols[i].number_input(flow_label(definition, flow), 0.0, 1.0, float(p), step=0.05,
                                             key=f"{k}:br:{gateway}:{flow}", help=f"flow `{flow}`"))
            for i, (flow, p) in enumerate((flows or {}).items())}

    messages = dict(data.get("messages") or {})
    if messages:
        st.markdown("**Messages** from the world (after how long, and how likely)")
    form["messages"] = {}
    for message, spec in messages.items():
        spec = dict(spec or {})
        shown = spec_to_form(spec.get("after"))
        if shown is None:
            st.caption(f"{message}: as in the YAML.")
            continue
        st.markdown(f"Message `{message}`")
        row = st.columns([3, 2, 2, 3], vertical_alignment="bottom")
        kind = row[0].selectbox("Arrives after", DISTRIBUTIONS, DISTRIBUTIONS.index(shown[0]),
                                key=f"{k}:mdist:{message}")
        values = ([duration_words(v) for v in shown[1]] if kind == shown[0] else default_params(kind, shown[1]))
        names = PARAMETERS[kind].split(", ")
        boxes = st.columns(len(names)) if len(names) > 2 else None
        texts = [(row[1 + i] if boxes is None else boxes[i]).text_input(
            param, values[i], key=f"{k}:mp{i}:{kind}:{message}", help=DURATION_HINT) for i, param in enumerate(names)]
        probability = row[-1].number_input("Probability", 0.0, 1.0, float(spec.get("probability", 1.0)),
                                           step=0.05, key=f"{k}:mprob:{message}")
        form["messages"][message] = (kind, texts, probability)

    composed, form_problems = compose(data, form)
    if composed != data:  # the form changed: it is the draft now, and the YAML shows it
        st.session_state[draft_key] = data = composed
        st.session_state.pop(yaml_error_key, None)
        unsaved = saved_data is None or saved_data != data
    for problem in form_problems:
        st.error(problem, icon=":material/error:")

with yaml_col:
    if yaml_error_key not in st.session_state:
        st.session_state[yaml_key] = to_yaml(data)
    st.text_area("Scenario YAML (advanced: every option, in sync with the form)", key=yaml_key, height=520,
                 on_change=_yaml_edited, help="Edits apply when you click outside the box or press Ctrl+Enter.")
    if yaml_error_key in st.session_state:
        st.error(f"The YAML does not read, so the form still shows the last good one: "
                 f"{st.session_state[yaml_error_key]}", icon=":material/error:")
    if st.button("Start over from a generated scenario", key="sim_regenerate", icon=":material/auto_fix_high:"):
        st.session_state[draft_key] = starting_scenario(definition)
        st.session_state.pop(yaml_error_key, None)
        st.session_state[version_key] = version + 1
        st.rerun()
    if source == "saved":
        if unsaved:
            st.caption(":orange[:material/edit: Unsaved changes: they stay while you visit other pages; save them "
                       "to keep them with the design.]")
        else:
            st.caption(":material/check: Saved with the design.")
        if st.button("Save the scenario with the design", key="sim_save", icon=":material/save:",
                     disabled=not workspace.may_write or not unsaved,
                     help=None if workspace.may_write else "Saving with the design needs the designer role."):
            text = to_yaml(data)
            try:
                scenario_from_yaml(text, f"{name}.scenario.yaml")
                workspace.save_scenario(name, text)
            except WaooawError as exc:
                st.error(str(exc))
            else:
                flash(f"Scenario saved beside {name}.")
                st.rerun()
    else:
        st.caption("A template's scenario is not saved: save the design as your own in the Designer to keep one.")

# --- run ----------------------------------------------------------------------------------------------------
if st.button("Run simulation", type="primary", key="sim_run", icon=":material/play_arrow:",
             help="Runs the scenario as the form and the YAML show it."):
    try:
        if form_problems:
            raise ValueError("fix the form first: " + "; ".join(form_problems))
        scenario = scenario_from_yaml(to_yaml(data), f"{name}.scenario.yaml")
        problems = [p for p in scenario.check(definition, called) if p.severity == "error"]
        if problems:
            raise DefinitionError(problems, f"{name}.scenario.yaml")
        bar = st.progress(0.0, text=f"Simulating {scenario.replications} replication(s)…")
        results = simulate(definition, scenario, called=called,
                           progress=lambda done: bar.progress(min(max(done, 0.0), 1.0)))
        bar.empty()
    except DefinitionError as exc:  # ScenarioError is one: every problem with its line
        st.error("The scenario cannot run:\n\n" + "\n".join(f"- {p}" for p in exc.problems))
    except ValueError as exc:
        st.error(f"The scenario cannot run: {exc}")
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
    load = load_report(results)
    if load.overloaded:
        st.error(load.message(), icon=":material/trending_up:")
    st.markdown(f"#### {dominant_line(results, definition)}")
    cards = kpi_cards(results, definition)
    columns = st.columns(min(len(cards), 3) or 1)
    for i, card in enumerate(cards):
        columns[i % len(columns)].metric(card.label, card.value, help=card.interval, border=True)
        columns[i % len(columns)].caption(card.interval)
    st.caption(f"Cases: {load.arrived:,.0f} arrived after the warm-up, {load.finished:,.0f} of them finished, "
               f"{load.open_at_end:,.0f} still open at the horizon (means over replications). Cycle times count "
               "finished cases.")
    figures = st.columns(2)
    figures[0].pyplot(plots.cycle_time_histogram(results), width="stretch")
    figures[1].pyplot(plots.queue_length(results), width="stretch")
    st.columns(2)[0].pyplot(plots.utilisation_bars(results), width="stretch")
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
        st.session_state[b_key] = to_yaml(data)
    with st.form(f"sim_whatif_form:{source}:{name}"):
        st.text_area("Scenario B (YAML)", key=b_key, height=260)
        compare_clicked = st.form_submit_button("Compare A and B", icon=":material/compare_arrows:")
    if compare_clicked:
        try:
            scenario_b = scenario_from_yaml(st.session_state[b_key], "what-if.yaml")
            results_b = simulate(definition, scenario_b, called=called)
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
