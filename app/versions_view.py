"""The Deployments page's versions section: rollout weights, the A/B table, the migration dry run and the
replay report of one definition. Thin: the logic is ``engine.versions``."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from app.chrome import PageContext
from app.widgets import act
from engine.errors import WaooawError
from engine.versions import (
    Guardrail,
    clear_rollout,
    compare_versions,
    get_rollout,
    migrate,
    plan_migration,
    replay_versions,
    rollout_history,
    set_rollout,
    version_table,
)


def parse_mapping(text: str) -> dict[str, str]:
    """``old = new`` pairs, one per line (blank lines and ``#`` comments ignored)."""
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise ValueError(f"mapping line {number}: write 'old_node = new_node', got {line!r}")
        old, new = (part.strip() for part in line.split("=", 1))
        if not old or not new:
            raise ValueError(f"mapping line {number}: both node ids are needed, got {line!r}")
        mapping[old] = new
    return mapping


def _pct(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def rollout_section(ctx: PageContext, name: str, versions: list[int]) -> None:
    engine = ctx.engine
    policy = get_rollout(engine, name)
    st.markdown("**Rollout**: which version new instances get. The version is chosen from the business key "
                "(the same key always gets the same version; growing the new version's share never moves a key "
                "back), else from the instance id.")
    if policy is None:
        st.caption(f"No rollout: new instances get the latest version, v{max(versions)}.")
    current = {v: share * 100 for v, share in policy.shares.items()} if policy else {max(versions): 100.0}
    shown = versions[-4:]
    with st.form(f"rollout:{name}"):
        cols = st.columns(len(shown))
        weights = {v: cols[i].slider(f"v{v} %", 0, 100, round(current.get(v, 0.0)), key=f"weight:{name}:{v}")
                   for i, v in enumerate(shown)}
        reason = st.text_input("Why (recorded)", key=f"rollout_reason:{name}", placeholder="e.g. canary 10 %")
        guard = st.checkbox("Guardrail: roll the newest version back automatically when its failure or SLA breach "
                            "rate is significantly worse (one-sided z-test, 5 %)", key=f"guard:{name}",
                            value=bool(policy and policy.guardrail))
        minimum = st.number_input("…after this many instances of each", 10, 100_000, 50, key=f"guard_min:{name}")
        if st.form_submit_button("Apply rollout", type="primary", icon=":material/tune:"):
            rail = None
            live = sorted(v for v, w in weights.items() if w > 0)
            if guard and len(live) >= 2:
                rail = Guardrail(candidate=live[-1], baseline=live[-2], min_instances=int(minimum))
            act(ctx, f"Rollout of {name} set: " + ", ".join(f"v{v} {w} %" for v, w in weights.items() if w),
                set_rollout, engine, name, {v: w for v, w in weights.items() if w}, actor=ctx.user,
                reason=reason.strip() or None, guardrail=rail)
    if policy is not None and st.button("Remove the rollout (latest version for all)", key=f"clear:{name}"):
        act(ctx, f"Rollout of {name} removed: new instances get v{max(versions)}.", clear_rollout, engine, name,
            actor=ctx.user)
    history = rollout_history(engine, name)
    if not history.empty:
        with st.expander(f"Rollout history ({len(history)} changes)"):
            shown_history = history.assign(weights=history["weights"].map(
                lambda w: ", ".join(f"v{v} {x:g}" for v, x in sorted(w.items())) or "latest"))
            st.dataframe(shown_history[["at", "actor", "weights", "reason"]], hide_index=True,
                         key=f"rollout_history:{name}")


def ab_section(ctx: PageContext, name: str, versions: list[int]) -> None:
    table = version_table(ctx.engine, name)
    if table.empty:
        st.caption("No instances yet: the A/B table fills as instances run.")
        return
    shown = table.assign(**{c: table[c].map(_pct) for c in ("completion_rate", "failure_rate", "sla_breach_rate")},
                         outcomes=table["outcomes"].map(lambda o: ", ".join(f"{k} {_pct(v)}" for k, v in o.items())))
    st.dataframe(shown, hide_index=True, key=f"ab_table:{name}",
                 column_config={"cycle_p50_h": st.column_config.NumberColumn("cycle p50 (h)", format="%.1f"),
                                "cycle_p90_h": st.column_config.NumberColumn("cycle p90 (h)", format="%.1f")})
    ran = sorted(table["version"].tolist())
    if len(ran) >= 2:
        cols = st.columns(2)
        a = cols[0].selectbox("Compare version", ran, index=len(ran) - 2, key=f"ab_a:{name}")
        b = cols[1].selectbox("with version", ran, index=len(ran) - 1, key=f"ab_b:{name}")
        if a != b:
            diff = compare_versions(ctx.engine, name, int(a), int(b))
            number = st.column_config.NumberColumn(format="%.3f")  # hours and shares: no 0.000003
            st.dataframe(diff.assign(metric=diff["metric"].str.replace("cycle_time_h", "cycle time (h)")
                                     .str.replace("_", " ")),
                         hide_index=True, key=f"ab_diff:{name}",
                         column_config={c: number for c in ("v1", "v2", "difference", "ci_low", "ci_high")}
                         | {"p_value": st.column_config.NumberColumn("p value", format="%.4f")})
            worse = diff[diff["significant"]]
            st.caption("Significant at 5 %: " + (", ".join(f"{m} {s}".strip() for m, s in
                                                          zip(worse["metric"], worse["subject"], strict=True))
                                                 if not worse.empty else "nothing"))


def version_pair(cols: list, versions: list[int], labels: tuple[str, str], keys: tuple[str, str]) -> tuple[int, int]:
    """Two version pickers (the one before the newest, and the newest, by default)."""
    source = cols[0].selectbox(labels[0], versions, index=max(len(versions) - 2, 0), key=keys[0],
                               format_func=lambda v: f"v{v}")
    target = cols[1].selectbox(labels[1], versions, index=len(versions) - 1, key=keys[1],
                               format_func=lambda v: f"v{v}")
    return source, target


def migration_section(ctx: PageContext, name: str, versions: list[int]) -> None:
    source, target = version_pair(st.columns(2), versions, ("Migrate running instances of", "to"),
                                  (f"mig_from:{name}", f"mig_to:{name}"))
    text = st.text_area("Node mapping (ids that stay the same map to themselves)", key=f"mig_map:{name}",
                        placeholder="approve = review", height=80)
    if source == target:
        st.caption("Pick two different versions.")
        return
    try:
        plan = plan_migration(ctx.engine, name, int(source), int(target), parse_mapping(text))
    except (ValueError, WaooawError) as exc:  # a bad mapping line or an unknown node: say which
        st.error(str(exc), icon=":material/error:")
        return
    frame = plan.to_frame()
    st.markdown(f"Dry run: **{len(plan.migratable)}** can migrate, **{len(plan.refused)}** refused.")
    if not frame.empty:
        st.dataframe(frame, hide_index=True, key=f"mig_plan:{name}")
    if plan.migratable and st.button(f"Migrate {len(plan.migratable)} instance(s) to v{target}", type="primary",
                                     key=f"mig_go:{name}", icon=":material/move_up:"):
        act(ctx, f"Migrated to v{target}.", migrate, ctx.engine, plan, actor=ctx.user)


def replay_section(ctx: PageContext, name: str, versions: list[int]) -> None:
    cols = st.columns(3)
    source, target = version_pair(cols, versions, ("Replay finished runs of", "through"),
                                  (f"rep_from:{name}", f"rep_to:{name}"))
    limit = cols[2].number_input("at most", 1, 10_000, 200, key=f"rep_limit:{name}")
    if st.button("Replay", key=f"rep_go:{name}", icon=":material/replay:"):
        report = replay_versions(ctx.engine, name, int(source), int(target), limit=int(limit))
        if report.empty:
            st.info(f"No finished instances of v{source} to replay.")
            return
        counts = report["result"].value_counts()
        st.markdown(", ".join(f"**{counts.get(k, 0)}** {k}" for k in ("same", "diverged", "unreplayable")))
        shown = report.assign(recorded_path=report["recorded_path"].map(" → ".join),
                              new_path=report["new_path"].map(" → ".join))
        st.dataframe(pd.DataFrame(shown), hide_index=True, key=f"rep_table:{name}")


def versions_panel(ctx: PageContext, name: str, versions: list[int]) -> None:
    """Tabs for one definition: rollout, A/B, migration, replay."""
    tabs = st.tabs(["Rollout", "A/B comparison", "Migration", "Replay"])
    with tabs[0]:
        rollout_section(ctx, name, versions)
    with tabs[1]:
        ab_section(ctx, name, versions)
    with tabs[2]:
        migration_section(ctx, name, versions)
    with tabs[3]:
        replay_section(ctx, name, versions)
