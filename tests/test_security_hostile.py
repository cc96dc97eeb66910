"""The hostile-definition suite: definitions are data, never code.

BPMN: external entities, external DTDs (a local HTTP server proves nothing is fetched), parameter
entities, XInclude and entity expansion stay inert. Expressions: ``__import__`` and attribute walks are
refused at validation with the reason. Agents: a name nobody registered, a module off the allow-list,
a qualname walking out of an allowed module are refused at deploy. Each refusal names the problem and
writes nothing (row counts before and after), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.bpmn import import_bpmn
from engine.errors import DefinitionError
from engine.model import serialize
from engine.runtime import Engine, VirtualClock
from engine.runtime.tables import DefinitionRow, HumanTaskRow, IncidentRow, InstanceRow, JobRow, VariableRow
from engine.security import Principal

TABLES = [DefinitionRow, InstanceRow, JobRow, VariableRow, HumanTaskRow, IncidentRow]
BPMN_NS = 'xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:xi="http://www.w3.org/2001/XInclude"'


def counts(engine: Engine) -> dict[str, int]:
    with engine.db.connect() as conn:
        return {t.__tablename__: conn.execute(select(func.count()).select_from(t.__table__)).scalar_one()
                for t in TABLES}


@pytest.fixture
def engine(db_url: str) -> Engine:
    return Engine(db_url, clock=VirtualClock(), principal=Principal.system())


# --- XML ------------------------------------------------------------------------------------------------

def bpmn(doctype: str = "", name: str = "n", documentation: str = "") -> str:
    return (f'<?xml version="1.0"?>\n{doctype}\n<definitions {BPMN_NS} id="d"><process id="p" name="{name}" '
            f'isExecutable="true"><documentation>{documentation}</documentation><startEvent id="s"/>'
            '<sequenceFlow id="f" sourceRef="s" targetRef="e"/><endEvent id="e"/></process></definitions>')


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-42")
    return path


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server recording every request: an external DTD or entity must never reach it."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY leak "FETCHED-FROM-NETWORK">')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def laughs(levels: int = 9) -> str:
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefghij", "bcdefghijk"[:levels], strict=False))
    return f"<!DOCTYPE definitions [{entities}]>"


def hostile_documents(secret: Path, url: str) -> dict[str, str]:
    uri = secret.as_uri()
    return {
        "external entity in text": bpmn(f'<!DOCTYPE definitions [<!ENTITY x SYSTEM "{uri}">]>', documentation="&x;"),
        "external entity in an attribute": bpmn(f'<!DOCTYPE definitions [<!ENTITY x SYSTEM "{uri}">]>', name="&x;"),
        "external entity over the network": bpmn(f'<!DOCTYPE definitions [<!ENTITY x SYSTEM "{url}/x">]>',
                                                 documentation="&x;"),
        "external DTD": bpmn(f'<!DOCTYPE definitions SYSTEM "{url}/evil.dtd">', documentation="&leak;"),
        "parameter entity": bpmn(f'<!DOCTYPE definitions [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]>',
                                 documentation="&leak;"),
        "XInclude": bpmn(documentation=f'<xi:include href="{uri}" parse="text"/>'),
        "entity expansion (billion laughs) in text": bpmn(laughs(), documentation="&j;"),
        "entity expansion (billion laughs) in an attribute": bpmn(laughs(), name="&j;"),
    }


CASES = list(hostile_documents(Path("/x"), "http://x"))


@pytest.mark.parametrize("case", CASES)
def test_hostile_bpmn_stays_inert(engine: Engine, secret: Path, listener: tuple[str, list[str]], case: str) -> None:
    url, seen = listener
    text = hostile_documents(secret, url)[case]
    before = counts(engine)
    try:
        definition = import_bpmn(text, source="hostile.bpmn").definition
    except DefinitionError as exc:  # refused: the message names the XML problem and leaks nothing
        message = str(exc)
        assert message.startswith("hostile.bpmn: xml") and "TOP-SECRET" not in message
        assert counts(engine) == before
    else:  # read: whatever the entity or include pointed at is not in it, and nothing grew
        dumped = definition.to_json()
        assert "TOP-SECRET" not in dumped and "FETCHED" not in dumped
        assert len(dumped) < 5_000
        engine.deploy(definition)  # it is an ordinary, harmless definition now
    assert seen == [], f"the reader fetched {seen}"


# --- expressions ----------------------------------------------------------------------------------------

def yaml_with_condition(condition: str, agent: str = "designs.agents:notify") -> str:
    return f"""id: hostile
variables:
- name: amount
  type: integer
nodes:
- {{id: start, kind: start}}
- {{id: check, kind: exclusive_gateway, default: to_low}}
- {{id: high, kind: service_task, agent: "{agent}"}}
- {{id: low, kind: end}}
- {{id: done, kind: end}}
flows:
- {{id: s, source: start, target: check}}
- id: to_high
  source: check
  target: high
  condition: {condition!r}
- {{id: to_low, source: check, target: low}}
- {{id: h, source: high, target: done}}
"""


HOSTILE_EXPRESSIONS = {
    "__import__": "__import__('os').system('touch /tmp/pwned') == 0",
    "dunder attribute walk": "amount.__class__.__mro__[1].__subclasses__() != []",
    "builtins through a function's globals": "(lambda: 0).__globals__['__builtins__'] != 0",
    "private attribute": "amount._secret == 1",
    "eval": "eval('1+1') == 2",
    "open a file": "open('/etc/passwd').read() != ''",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_EXPRESSIONS))
def test_hostile_expressions_are_refused_at_validation(engine: Engine, case: str) -> None:
    expression = HOSTILE_EXPRESSIONS[case]
    before = counts(engine)
    with pytest.raises(DefinitionError, match="to_high") as refused:
        engine.deploy(serialize.from_yaml(yaml_with_condition(expression), source="hostile.yaml"))
    assert "Traceback" not in str(refused.value)
    assert counts(engine) == before
    assert not Path("/tmp/pwned").exists()


# --- agents ---------------------------------------------------------------------------------------------

HOSTILE_AGENTS = {
    "a module off the allow-list": ("os:system", "'os' is not on the allow-list"),
    "a module off the allow-list, nested": ("subprocess:Popen", "'subprocess' is not on the allow-list"),
    "a walk out of an allowed module": ("designs.agents:os.system", "is a module, not a callable"),
    "an imported name of an allowed module": ("designs.agents:import_module", "not a callable defined in an allowed"),
    "a private name": ("designs.agents:_private", "is not a public name"),
    "a name nobody registered": ("payments.charge_card", "no agent or handler named 'payments.charge_card'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_AGENTS))
def test_agents_come_only_from_the_registry_or_allowed_modules(engine: Engine, case: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import designs.agents

    # as if the agents module had ``import os`` and ``from importlib import import_module``
    monkeypatch.setattr(designs.agents, "os", __import__("os"), raising=False)
    monkeypatch.setattr(designs.agents, "import_module", __import__("importlib").import_module, raising=False)
    agent, reason = HOSTILE_AGENTS[case]
    before = counts(engine)
    with pytest.raises(DefinitionError, match="high: agent") as refused:
        engine.deploy(serialize.from_yaml(yaml_with_condition("amount > 10", agent), source="hostile.yaml"))
    assert reason in str(refused.value)
    assert counts(engine) == before


def test_a_bpmn_service_task_naming_a_java_class_is_refused_at_deploy(engine: Engine) -> None:
    text = (f'<definitions {BPMN_NS} xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d">'
            '<process id="p" isExecutable="true"><startEvent id="s"/>'
            '<sequenceFlow id="f1" sourceRef="s" targetRef="t"/>'
            '<serviceTask id="t" camunda:class="java.lang.Runtime"/>'
            '<sequenceFlow id="f2" sourceRef="t" targetRef="e"/><endEvent id="e"/></process></definitions>')
    definition = import_bpmn(text).definition
    before = counts(engine)
    with pytest.raises(DefinitionError, match=r"no agent or handler named 'java\.lang\.Runtime'"):
        engine.deploy(definition)
    assert counts(engine) == before


def test_an_allow_listed_module_works_and_the_setting_extends_the_list(engine: Engine,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    engine.deploy(serialize.from_yaml(yaml_with_condition("amount > 10"), source="ok.yaml"))  # designs: listed
    monkeypatch.setenv("WAOOAW_AGENT_MODULES", "json")
    engine.deploy(serialize.from_yaml(yaml_with_condition("amount > 10", "json:dumps"), source="ok.yaml"))
    assert counts(engine)["wf_definitions"] == 2
