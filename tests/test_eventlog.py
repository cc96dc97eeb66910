"""The process-mining event log: lifecycle transitions, names, XES/CSV, the live engine's log, pm4py (optional)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree

import designs
from engine.bpmn import to_bpmn
from engine.eventlog import EVENT_COLUMNS, read_xes_traces, transitions, write_xes
from engine.eventlog.live import event_log as live_event_log
from engine.runtime import Engine, VirtualClock
from engine.security import Principal
from simulator import load_scenario, simulate

DESIGNS = Path(designs.__file__).parent


@pytest.fixture(scope="module")
def campaign():
    return simulate(designs.load_design("marketing_campaign"),
                    load_scenario(DESIGNS / "marketing_campaign.scenario.yaml"), replications=2)


def bpmn_names(definition) -> set[str]:
    """Each node's name in the exported BPMN, else its id (labels the exporter generates for unnamed elements,
    listed in <waooaw:labels>, are not names the model gave)."""
    from engine.bpmn.labels import drop_generated

    root = etree.fromstring(to_bpmn(definition).encode())
    drop_generated(root)
    return {el.get("name") or el.get("id") for el in root.iter() if el.get("id")}


def test_one_row_per_transition_in_lifecycle_order(campaign) -> None:
    log = campaign.event_log(0)
    assert list(log.columns) == EVENT_COLUMNS
    assert log["time:timestamp"].is_monotonic_increasing
    assert set(log["lifecycle:transition"]) <= {"schedule", "start", "complete", "ate_abort", "withdraw"}
    for (_, _), rows in log.groupby(["case:concept:name", "concept:instance"]):
        seq = list(rows["lifecycle:transition"])
        kind = rows["kind"].iloc[0]
        if kind == "user_task":
            assert seq[0] == "schedule"
        assert seq.count("start") <= 1 and len(seq) == len(set(seq))
        if "start" in seq and len(seq) > seq.index("start") + 1:
            assert seq[seq.index("start") + 1] in ("complete", "ate_abort")
    activities = campaign.activity_log(0)
    started = activities["start_timestamp"].notna()
    assert (log["lifecycle:transition"] == "start").sum() == started.sum()
    assert (log["lifecycle:transition"] == "schedule").sum() == (activities["kind"] == "user_task").sum()


def test_labels_are_bpmn_names_and_compensation_is_labelled(campaign) -> None:
    log = campaign.event_log()
    definition = designs.load_design("marketing_campaign")
    names = bpmn_names(definition)
    undo = log[log["kind"] == "compensation"]
    assert len(undo) > 0, "the seed scenario rejects or fails some launches: drafts are discarded"
    assert set(undo["concept:name"]) <= {f"Undo: {n}" for n in ("Create blog", "Create social", "Create email",
                                                                 "Launch")}
    assert set(log.loc[log["kind"] != "compensation", "concept:name"]) <= names
    assert not (set(log.loc[log["kind"] != "compensation", "concept:name"]) & set(undo["concept:name"]))


def test_one_resource_scheme(campaign) -> None:
    log = campaign.event_log()
    people = re.compile(r"^[\w.-]+#\d+$")
    for kind, resource in log.dropna(subset=["org:resource"])[["kind", "org:resource"]].itertuples(index=False):
        if kind in ("service_task", "compensation"):
            assert resource.startswith("agent:designs.agents:"), resource
        else:
            assert people.match(resource), resource
    assert set(log.loc[log["kind"] == "compensation", "org:resource"].dropna()) == {
        "agent:designs.agents:discard_content"}


def test_transitions_of_hand_made_activations() -> None:
    t = pd.Timestamp("2026-01-05T09:00:00Z")
    h = pd.Timedelta(hours=1)
    acts = pd.DataFrame({
        "case:concept:name": ["1", "1", "1", "1"], "concept:name": ["Review", "Call", "Wait", "Review"],
        "concept:instance": ["r#1", "c#1", "w#1", "r#2"], "activity_id": ["r", "c", "w", "r"],
        "kind": ["user_task", "service_task", "timer", "user_task"], "org:resource": ["ada", "agent:x", None, None],
        "org:group": ["team", "agent:x", None, "team"], "enabled_timestamp": [t, t + h, t, t + 2 * h],
        "start_timestamp": [t + h, t + h, t, pd.NaT], "time:timestamp": [t + 2 * h, t + 2 * h, t + 3 * h, t + 3 * h],
        "lifecycle:transition": "complete", "outcome": ["completed", "failed", "completed", "cancelled"],
        "attempt": [1, 1, 1, 1], "sla_breached": False, "waiting_s": 0.0, "working_s": 0.0})
    log = transitions(acts)
    who = [None if pd.isna(r) else r for r in log["org:resource"]]
    got = list(zip(log["concept:name"], log["lifecycle:transition"], who, strict=True))
    assert got == [("Review", "schedule", None), ("Review", "start", "ada"), ("Call", "start", "agent:x"),
                   ("Review", "complete", "ada"), ("Call", "ate_abort", "agent:x"), ("Review", "schedule", None),
                   ("Wait", "complete", None), ("Review", "withdraw", None)]


def test_xes_file_reads_back(campaign, tmp_path) -> None:
    log = campaign.event_log(0)
    path = campaign.to_xes(tmp_path / "campaign.xes", replication=0)
    root = etree.parse(str(path)).getroot()
    assert root.tag == "{http://www.xes-standard.org/}log"
    prefixes = {e.get("prefix") for e in root if e.tag.endswith("extension")}
    assert prefixes == {"concept", "lifecycle", "org", "time"}
    traces = list(read_xes_traces(path))
    assert [t["concept:name"] for t, _ in traces] == list(pd.unique(log["case:concept:name"]))
    assert sum(len(events) for _, events in traces) == len(log)
    first_case = log[log["case:concept:name"] == traces[0][0]["concept:name"]]
    events = traces[0][1]
    assert [e["concept:name"] for e in events] == list(first_case["concept:name"])
    assert [e["lifecycle:transition"] for e in events] == list(first_case["lifecycle:transition"])
    stamp = pd.Timestamp(events[0]["time:timestamp"])
    assert stamp.tzinfo is not None and abs(stamp - first_case["time:timestamp"].iloc[0]) < pd.Timedelta(
        milliseconds=1)
    assert "org:resource" not in events[0] or events[0]["org:resource"]  # missing values are left out
    typed = {child.tag.split("}")[1] for child in root.iter() if child.get("key") == "attempt"}
    assert typed == {"int"}


def test_write_xes_needs_a_case_column(tmp_path) -> None:
    with pytest.raises(KeyError, match="case:concept:name"):
        write_xes(pd.DataFrame({"concept:name": ["a"]}), tmp_path / "x.xes")


def test_live_engine_log_has_the_same_shape_and_names(tmp_path) -> None:
    engine = Engine(f"sqlite:///{tmp_path}/live.db", clock=VirtualClock(), principal=Principal.system())
    engine.deploy(designs.load_design("marketing_campaign"))
    ids = [engine.start("marketing_campaign", {"campaign": f"c{i}"}) for i in range(2)]
    engine.run_until_idle()
    for approved, task in zip((True, False), sorted(engine.tasks(), key=lambda t: t["id"]), strict=True):
        engine.advance(timedelta(minutes=30))
        engine.claim(task["id"], "marketing-lead")
        engine.advance(timedelta(minutes=10))
        engine.complete_task(task["id"], {"approved": approved}, actor="marketing-lead")
    engine.run_until_idle()
    log = live_event_log(engine)
    assert list(log.columns) == EVENT_COLUMNS
    assert set(log["case:concept:name"]) == set(ids)
    rejected = log[log["case:concept:name"] == ids[1]]
    undone = rejected[rejected["kind"] == "compensation"]
    assert set(undone["concept:name"]) == {"Undo: Create blog", "Undo: Create social", "Undo: Create email"}
    assert set(undone["org:resource"]) == {"agent:designs.agents:discard_content"}
    approval = log[(log["case:concept:name"] == ids[0]) & (log["activity_id"] == "approval")]
    assert list(approval["lifecycle:transition"]) == ["schedule", "start", "complete"]
    # assigned to marketing-lead from the start, so claim() records nothing: the work starts when completed
    assert list(approval["time:timestamp"].diff().dropna()) == [timedelta(minutes=40), timedelta(0)]
    assert set(approval["org:resource"].dropna()) == {"marketing-lead"}
    assert not (log["kind"].isin(["timer", "message"])).any()  # the campaign has no waits
    simulated = simulate(designs.load_design("marketing_campaign"),
                         load_scenario(DESIGNS / "marketing_campaign.scenario.yaml"), replications=1).event_log()
    assert set(log["concept:name"]) <= set(simulated["concept:name"])


def test_live_log_has_fired_timers_like_the_simulator(tmp_path) -> None:
    engine = Engine(f"sqlite:///{tmp_path}/live.db", clock=VirtualClock(), principal=Principal.system())
    engine.deploy(designs.load_design("customer_onboarding"))
    instance = engine.start("customer_onboarding", {"email": "ada@example.com"})
    engine.run_until_idle()
    engine.advance(timedelta(days=8))
    log = live_event_log(engine)
    trial = log[log["activity_id"] == "trial"]
    assert list(trial["lifecycle:transition"]) == ["complete"] and list(trial["kind"]) == ["timer"]
    assert list(trial["concept:name"]) == ["7-day trial"]
    order = list(log.loc[log["lifecycle:transition"] == "complete", "activity_id"])
    assert order.index("capture_lead") < order.index("trial") < order.index("check_conversion")
    simulated = simulate(designs.load_design("customer_onboarding"),
                         load_scenario(DESIGNS / "customer_onboarding.scenario.yaml"), replications=1).event_log()
    assert set(log["concept:name"]) <= set(simulated["concept:name"])
    assert set(trial["case:concept:name"]) == {instance}


# --- optional: pm4py (AGPL, never a dependency) -----------------------------------------------------------


def test_pm4py_precision_on_the_campaign(tmp_path) -> None:
    """pm4py reads the XES file; the model mined from its complete events fits (1.0) and is precise (1.0).

    Drafts of fixed durations make their order, and so the order of their undoing (newest first), one
    order: the campaign's parallel block with random durations lets any model allow interleavings the
    log shows only some of. Logging compensation under the task's own name instead makes the model loop
    back to the drafts, and the precision falls.
    """
    pm4py = pytest.importorskip("pm4py", reason="pm4py is AGPL and optional: pip install pm4py to run this")
    text = (DESIGNS / "marketing_campaign.scenario.yaml").read_text()
    for task, mean in (("create_blog", "PT40M"), ("create_social", "PT10M"), ("create_email", "PT20M")):
        text = re.sub(rf"{task}: {{duration: {{lognormal: {{[^}}]*}}}}", f"{task}: {{duration: {mean}", text)
    scenario_file = tmp_path / "fixed.scenario.yaml"
    scenario_file.write_text(text)
    results = simulate(designs.load_design("marketing_campaign"), load_scenario(scenario_file), replications=3)
    path = results.to_xes(tmp_path / "campaign.xes")

    def fitness_precision(log: pd.DataFrame) -> tuple[float, float]:
        done = log[log["lifecycle:transition"] == "complete"]
        net, im, fm = pm4py.discover_petri_net_inductive(done)
        fitness = pm4py.fitness_token_based_replay(done, net, im, fm)["log_fitness"]
        return fitness, pm4py.precision_token_based_replay(done, net, im, fm)

    log = pm4py.read_xes(str(path))
    assert log["concept:name"].str.startswith("Undo: ").any()
    assert fitness_precision(log) == (pytest.approx(1.0), pytest.approx(1.0))
    as_before = log.assign(**{"concept:name": log["concept:name"].str.removeprefix("Undo: ")})
    assert fitness_precision(as_before)[1] < 0.99


def test_exports_mask_sensitive_variables_unless_the_principal_may_see_them(db_url: str, tmp_path: Path) -> None:
    """The event log with case variables (DataFrame, CSV, XES), the history export and the task frames show a
    sensitive value only to an operator or admin, as ``instance()`` does."""
    import json

    from engine.eventlog import write_csv
    from engine.model import FormField
    from engine.model.builder import ProcessBuilder
    from engine.model.definition import VariableDecl
    from engine.security.sensitive import MASK

    secret = "078-05-1120"
    b = ProcessBuilder("kyc", variables=[VariableDecl(name="ssn", type="string", sensitive=True),
                                         VariableDecl(name="age", type="integer")])
    b.start().user("review", title="Review", candidate_groups=["kyc"],
                   form=[FormField(name="ssn", type="string")]).user("check", title="Check", assignee="clerk").end()
    system = Engine(db_url, clock=VirtualClock(), principal=Principal.system())
    system.deploy(b.build())
    iid = system.start("kyc", {"ssn": "000-00-0000", "age": 41})
    (task,) = system.tasks(instance_id=iid)
    system.complete_task(task["id"], {"ssn": secret}, actor="kim", groups=["kyc"])  # a form value, too
    viewers = {"clerk": Principal("clerk", roles={"designer", "deployer"}), "operator": Principal(
        "olga", roles={"operator"}), "admin": Principal("ada", roles={"admin"}), "system": Principal.system()}
    for who, principal in viewers.items():
        engine = system.acting_as(principal)
        masked = who == "clerk"
        log = live_event_log(engine, [iid], variables=True)
        assert set(log["case:ssn"]) == ({MASK} if masked else {secret}) and set(log["case:age"]) == {41}
        csv, xes, archive = (tmp_path / f"{who}.csv", tmp_path / f"{who}.xes", tmp_path / f"{who}.jsonl")
        write_csv(log, csv)
        write_xes(log, xes)
        engine.export_history(archive)
        audit = engine.task_audit(instance_id=iid).to_string()
        outcome = " ".join(str(t["outcome"]) for t in engine.tasks(instance_id=iid, status=None))
        for text in (csv.read_text(), xes.read_text(), archive.read_text(), audit, outcome):
            assert (secret in text) is not masked
            if masked:
                assert "000-00-0000" not in text and (MASK in text or json.dumps(MASK) in text)
        assert ("000-00-0000" in archive.read_text()) is not masked  # the start value, in the variable history
        record = json.loads(archive.read_text())
        assert record["instance"]["id"] == iid and record["rows"]["wf_variables"]  # the export is whole otherwise
    assert "case:ssn" not in live_event_log(system, [iid]).columns  # without variables: no values at all
