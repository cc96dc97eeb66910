"""The Instance, Runs and Bus pages after the fresh-user trial (AppTest): an ended instance offers no incident
actions, an operator sets a variable to fix an incident's cause and retries, Runs marks incidents and names the
end event reached, a finished instance's path is highlighted, ``?id=`` opens an instance, the Bus page shows the
engine's messages with the common sidebar; and the readable-table helpers of app/operations.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from streamlit.testing.v1 import AppTest
from test_app_loop import APP, check, data_dir, db_file, run, until  # noqa: F401  (fixtures)

from app.operations import INCIDENT, RunFilter, mark_runs, page_of_runs, variable_history, when
from engine.model import ProcessBuilder
from engine.runtime import Engine
from engine.runtime.ids import short_id


def ratio(inputs: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """An agent that fails on a bad input (100 // 0) and works once the input is fixed."""
    return {"ratio": 100 // int(inputs["n"])}


def fragile(check: Engine) -> str:  # noqa: F811
    b = ProcessBuilder("ratio_flow", variables={"n": int, "ratio": int})
    b.start().service("compute", agent=ratio, inputs=["n"], outputs=["ratio"], retry={"attempts": 1}).end("done")
    check.deploy(b.build())
    return check.start("ratio_flow", {"n": 0}, business_key="R-1")


def test_set_a_variable_then_retry_fixes_an_incident(data_dir, check: Engine) -> None:  # noqa: F811
    run("pages/3_Tasks.py", {"acting_as": "engineering-manager"})
    instance = fragile(check)
    at = run("pages/6_Instance.py", {"instance_id": instance, "acting_as": "engineering-manager"})
    at.sidebar.button(key="clock_+1 h").click().run()
    (incident,) = until(check.incidents)
    assert "ZeroDivisionError" in incident["error"]
    runs = run("pages/5_Runs.py", {"acting_as": "engineering-manager"})
    table = runs.dataframe[0].value.set_index("business key")
    assert table.loc["R-1", "status"] == "running · incident"
    check.start("ratio_flow", {"n": 5}, business_key="R-2")  # works: not an incident
    runs.selectbox(key="runs_status").select("running · incident").run()
    assert list(runs.dataframe[0].value["business key"]) == ["R-1"]
    at.run()
    at.text_area(key="set_vars_payload").set_value('{"n": 4}')
    at.button[[b.label for b in at.button].index("Set")].click().run()
    assert not at.exception and not at.error
    assert check.instance(instance).variables["n"] == 4
    history = next(d.value for d in at.dataframe if "new_value" in d.value.columns)
    assert history.iloc[-1]["actor"] == "engineering-manager" and "4" in set(history["new_value"])
    at.button(key=f"retry_{incident['id']}").click().run()
    assert not at.exception and not at.error
    view = check.instance(instance)
    assert view.status == "completed" and view.variables["ratio"] == 25 and check.incidents() == []
    runs.run()
    assert not runs.dataframe and any("No instance matches" in i.value for i in runs.info)  # fixed: off the list
    runs.selectbox(key="runs_status").select(None).run()
    row = runs.dataframe[0].value.set_index("business key").loc["R-1"]
    # the end reached, in words (Node.label: the end "done" has no name)
    assert (row["status"], row["outcome"]) == ("completed", "Done") and "+00:00" not in row["started"]


def test_a_cancelled_instance_offers_no_incident_actions(data_dir, check: Engine) -> None:  # noqa: F811
    run("pages/3_Tasks.py")
    instance = fragile(check)
    at = run("pages/6_Instance.py", {"instance_id": instance})
    at.sidebar.button(key="clock_+1 h").click().run()
    (incident,) = until(check.incidents)
    at.run()
    at.button(key=f"cancel_{incident['id']}").click().run()
    assert check.instance(instance).status == "cancelled" and check.incidents() == []
    at.run()
    keys = {b.key for b in at.button}
    assert f"retry_{incident['id']}" not in keys and f"cancel_{incident['id']}" not in keys
    reason = check.instance(instance).error or ""
    assert not at.exception and ("(incident" in reason or reason == "")
    spec = at.get("graphviz_chart")[0].proto.spec
    assert "penwidth=4" in spec and any("path the instance took before it was cancelled" in c.value
                                        for c in at.caption)


def test_a_deep_link_opens_the_instance(data_dir, check: Engine) -> None:  # noqa: F811
    run("pages/3_Tasks.py")
    instance = check.start("marketing_campaign", {"campaign": "spring"})
    linked = AppTest.from_file(str(APP / "pages/6_Instance.py"), default_timeout=60)
    linked.query_params["id"] = instance  # /Instance?id=... in a new tab: no session state
    linked.run()
    assert not linked.exception and linked.text_input(key="instance_pick").value == instance
    picked = run("pages/6_Instance.py", {"instance_id": instance})  # picked on Runs: the address names it
    assert picked.query_params["id"] == instance


def test_the_short_id_the_tables_show_opens_the_instance(data_dir, check: Engine) -> None:  # noqa: F811
    run("pages/3_Tasks.py")
    instance = check.start("marketing_campaign", {"campaign": "spring"})
    short = AppTest.from_file(str(APP / "pages/6_Instance.py"), default_timeout=60)
    short.query_params["id"] = short_id(instance)  # as Runs and Tasks show it
    short.run()
    assert not short.exception and not short.error, [e.value for e in short.error]
    assert short.query_params["id"] == instance  # the address now names the whole id
    twin = check.start("marketing_campaign", {"campaign": "summer"})  # started the same second: same id start
    from app.operations import resolve_instance_id
    assert short_id(twin) != short_id(instance)
    assert [resolve_instance_id(check, short_id(i)) for i in (instance, twin)] == [instance, twin]
    none = AppTest.from_file(str(APP / "pages/6_Instance.py"), default_timeout=60)
    none.query_params["id"] = "zzzzzzzz"
    none.run()
    assert "no instance" in none.error[0].value


def test_the_bus_page_shows_the_engines_messages_with_the_sidebar(data_dir, check: Engine) -> None:  # noqa: F811
    run("pages/3_Tasks.py")
    instance = check.start("incident_response", {"incident_id": "INC-3", "summary": "down"})
    until(lambda: check.inbox("on-call", ["on-call"]))
    at = run("pages/3_Tasks.py")
    at.sidebar.button(key="clock_+1 h").click().run()  # the reminder cycle throws incident.reminder
    bus = run("pages/8_Bus.py")
    assert not bus.exception
    assert any(b.key == "clock_+1 h" for b in bus.sidebar.button)  # the common sidebar: the clock control
    messages = bus.dataframe[0].value
    thrown = messages[messages["event"] == "thrown"]
    assert "incident.reminder" in set(thrown["message"]) and short_id(instance) in set(thrown["instance"])


def test_readable_values() -> None:
    assert when(None) == "—" and when(pd.NaT) == "—"
    assert when(datetime(2026, 12, 8, 0, 6, 35, tzinfo=UTC)) == "2026-12-08 00:06"
    assert when(1796084189677.115) == "2026-12-01 00:16"  # epoch ms, as the task audit stores due_at
    mixed = pd.DataFrame({"name": ["a", "b", "c"], "old_value": [None, 1, "x"], "new_value": [1, "x", None],
                          "changed_at": [datetime(2026, 1, 1, tzinfo=UTC)] * 3})
    out = variable_history(mixed)
    assert list(out["old_value"]) == ["—", "1", '"x"'] and list(out["changed_at"]) == ["2026-01-01 00:00"] * 3
    import pyarrow as pa
    pa.Table.from_pandas(out)  # one Arrow type per column: no ArrowTypeError in the server log


def test_mark_runs_on_an_empty_page(data_dir, check: Engine) -> None:  # noqa: F811
    frame, _ = page_of_runs(check, RunFilter(definition="nothing"))
    assert mark_runs(check, frame).empty
    assert page_of_runs(check, RunFilter(status=INCIDENT))[1] == "0"


def test_waiting_for_lists_open_human_tasks_in_an_ad_hoc_sub_process_and_plain(data_dir, check: Engine) -> None:  # noqa: F811
    """A user task (inside an ad-hoc sub-process, or plain) is what the instance waits for: never "Nothing"."""
    from engine.model import nodes as n

    run("pages/3_Tasks.py")
    b = ProcessBuilder("follow_up")
    b.start().ad_hoc("work", lambda inner: inner.add(n.UserTask(id="call", name="Call back", assignee="ann"))).user(
        "file_it", name="File it", candidate_groups=["clerks"]).end("e")
    check.deploy(b.build())
    instance = check.start("follow_up", {})
    at = run("pages/6_Instance.py", {"instance_id": instance})
    waiting = [m.value for m in at.markdown]
    assert not at.exception and not any("Nothing" in c.value for c in at.caption)
    assert any("human task" in m and "Call back" in m and "ann" in m for m in waiting), waiting
    (task,) = check.tasks(instance_id=instance)
    check.complete_task(task["id"], {}, actor="ann")
    at.run()
    waiting = [m.value for m in at.markdown]
    assert any("human task" in m and "File it" in m and "clerks" in m for m in waiting), waiting
    assert not any("Nothing" in c.value for c in at.caption)
